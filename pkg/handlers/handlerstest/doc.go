// Package handlerstest is the conformance suite every triggerbus handler kind
// must pass: the result mapping of the FDL convention (one set of keys,
// types and errors for every kind), a modified input that keeps every JSON
// value as it was, timeouts and cancellation, errors,
// middleware, concurrent calls and no goroutine left behind.
//
// A kind's test describes how to make handlers that behave in the standard
// ways of [Kind] and calls [Run]:
//
//	func TestWebhookConformance(t *testing.T) {
//		handlerstest.Run(t, handlerstest.Kind{Name: "webhook", Continue: ..., ...})
//	}
package handlerstest
