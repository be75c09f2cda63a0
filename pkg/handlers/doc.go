// Package handlers defines what a trigger function is to triggerbus: a
// [Handler] that takes an event and returns a [Result]. It holds the handler
// kinds (Go funcs through [Func], Lua/FDL scripts, webhooks and external
// commands) and the middleware that adds timeouts, panic recovery and
// instrumentation to any of them.
//
// Handlers return errors and never log them; the worker that calls them logs,
// counts and acts on each failure exactly once. Nothing in this package talks
// to NATS: what a function sends goes through the [Bus] the worker hands it
// in the call's context, so that every message it causes carries the
// Trigger-Origin header.
package handlers
