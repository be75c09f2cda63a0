// Package matcher decides which trigger functions run for an event.
//
// [Build] validates a list of [Function] registrations against the trigger
// catalogue of package subjects and compiles them into a [Set]: an immutable
// index from (trigger type, option) to the functions that run, in the order
// they run (ascending priority, ties broken by ref). A function registered for
// option [subjects.Any] runs for every option of its type.
//
// [Set.Match] is the hot path of the worker: it returns a precomputed slice,
// does not allocate, and takes the same time however many functions are
// registered. [Set.Subscriptions] gives the minimal set of NATS subjects that
// serve a Set: one wildcard <prefix>.<TYPE>.* for a type with an ANY
// registration, else one literal subject per registered option.
//
// A [Matcher] holds the current Set and swaps it atomically when the
// configuration is reloaded, while events are being matched.
//
// The package does no I/O and does not import nats.go. Everything in it is
// safe for concurrent use.
package matcher
