// Package matcher validates the functions registered with a worker and
// decides which of them run for an event. It is the worker's index, an
// implementation detail: embedders give pkg/worker a list of
// worker.Function values (an alias of [Function]) and never build a [Set].
//
// [Build] checks a list of [Function] registrations against the trigger
// catalogue of package subjects (type, options, PRE-only settings, the
// schedule of SCHEDULED functions, duplicate refs) and compiles the valid
// ones into a [Set]: an immutable index from (trigger type, option) to the
// functions that run, in the order they run (ascending priority, ties
// broken by ref). A function registered for option [subjects.Any] runs for
// every option of its type. The handler and schedule a Function carries
// are typed, and Build does not call them.
//
// [Set.Match] is the hot path of the worker: it returns a precomputed slice,
// does not allocate, and takes the same time however many functions are
// registered. [Set.Subscriptions] gives the minimal set of NATS subjects that
// serve a Set: one wildcard <prefix>.<TYPE>.* for a type with an ANY
// registration, else one literal subject per registered option.
//
// The package is internal so that the registration API is pkg/worker's
// alone (New and Replace check what they are given); cmd/trigger-worker
// uses it to list functions and their subjects (check) and to serve the
// valid functions when partial loading is allowed. It does no I/O and does
// not import nats.go. Everything in it is safe for concurrent use.
package matcher
