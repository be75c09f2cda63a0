// Package handlers defines what a trigger function is to triggerbus: a
// [Handler] that takes an event and returns a [Result]. It holds the
// contract every handler kind shares: the Go func kind ([Func]), the one
// reader of result documents ([ParseResult], [ReadResult]), what the worker
// tells a call ([Call], [Bus]), the error values, and the middleware that
// adds panic recovery and timeouts to any handler ([Recover], [Timeout],
// [Chain]).
//
// This package is the contract only. The handler kinds that run scripts,
// webhooks and programs are packages of their own that import it (and never
// the worker), so that a program links only the kinds it uses; each passes
// the conformance suite of
// [github.com/triggerbus/triggerbus/pkg/handlers/handlerstest].
//
// Handlers return errors and never log them; the worker that calls them logs,
// counts and acts on each failure exactly once. Nothing in this package talks
// to NATS: what a function sends goes through the [Bus] the worker hands it
// in the call's context, so that every message it causes carries the
// Trigger-Origin header.
package handlers
