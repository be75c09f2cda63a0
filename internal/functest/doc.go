// Package functest runs offline unit tests of trigger functions: the
// `trigger-worker test` command. A test file (NAME_test.yaml, next to the
// script NAME.lua) lists cases, each an event for one of the script's
// functions and what the function must do with it: the PRE decision
// (allowed, code, message, modified input) or the outcome, the messages it
// publishes and the mail it sends. Cases give canned answers for the
// requests the function makes (adminAPI/userAPI calls, trigger.request,
// simplehttp); a request no answer matches, or an answer no request takes,
// fails the case.
//
// The functions run through [worker.Offline], the worker's own decoding,
// matching, call path (timeouts, result check) and PRE chain, with no NATS:
// the harness is the call's bus, simplehttp's transport, the mail relay and
// an in-memory data store. [Run] returns a [Report]; [WriteText],
// [WriteJSON] and [WriteJUnit] print it. See docs/testing.md.
package functest
