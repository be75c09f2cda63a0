// Package faults holds the fault-injection tests of triggerbus: a worker
// killed while PRE requests are in flight, a NATS server restarted under
// load, the node of a three-node cluster a worker is connected to lost, a
// slow function flooding a subscription's pending buffer, a rolling
// restart of a fleet of trigger-worker processes, and a worker stopped while
// its server is down. They run against real
// NATS servers started in the test process by internal/natstest, on
// 127.0.0.1 with random ports; the workers that are killed or restarted are
// trigger-worker child processes, built once per test binary.
//
// The tests are in _test.go files; this package has no API. Run them with
//
//	go test -race ./test/faults
//
// Under the race detector, or with -short, load is scaled down (see
// race_on_test.go): the machine they were written for has 2 cores. The
// tests assert outcomes and ordering (every PRE call returns a refusal or
// the function's decision, never an allowed one it should not; a TIMEOUT
// the SDK makes comes no earlier than the deadline; a worker exits 0 before
// its shutdown timeout), never how fast: their waits are generous bounds
// against a hang, and latencies (how late after its deadline a call
// returned, how long a drain took) are logged, not asserted.
//
// The soak test runs only when TRIGGERBUS_SOAK=1:
//
//	TRIGGERBUS_SOAK=1 go test -run '^TestSoak$' -v -timeout 45m ./test/faults
//
// It runs mixed PRE, core POST and durable POST load for
// TRIGGERBUS_SOAK_DURATION (default 30m) against trigger-worker processes,
// kills a worker or restarts the NATS server every
// TRIGGERBUS_SOAK_KILL_EVERY (default 1m), and checks that the resident
// memory and goroutines of a long-lived worker stay flat and that durable
// delivery loses nothing. See docs/operations.md.
package faults
