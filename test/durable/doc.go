// Package durable holds the heavier end-to-end tests of durable delivery
// and of the scheduler: several workers sharing one JetStream consumer, a
// worker lost mid-stream, the stream leader of a JetStream cluster lost
// while events are published, and a fleet firing a schedule. They run
// against real NATS servers started in the test process by
// internal/natstest.
//
// The tests are in _test.go files; this package has no API. Run them with
//
//	go test -race ./test/durable
//
// Under the race detector, or with -short, the tests use smaller counts
// (see race_on_test.go): the machine they were written for has 2 cores.
package durable
