// Package integration holds the end-to-end tests of triggerbus: workers,
// the publisher SDK and the trigger-worker command against real NATS
// servers started in the test process by internal/natstest.
//
// The tests are in _test.go files; this package has no API. Run them with
//
//	go test -race ./test/integration
//
// Tests that run trigger-worker or examples/embed as child processes build
// them once per test binary, with the go command found on PATH.
package integration
