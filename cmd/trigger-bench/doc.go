// Command trigger-bench measures triggerbus against raw NATS, on the same
// server and process layout, and prints one table (and, with --json, a JSON
// report). See docs/benchmarks.md.
//
//	go run ./cmd/trigger-bench                 # the default table, about 2.5 minutes on 2 CPUs
//	go run ./cmd/trigger-bench --quick         # a few seconds, for CI
//	go run ./cmd/trigger-bench --scenarios pre-seq,pre-lua --runs 3 --json out.json
//
// Each run starts a new worker-side process (a hidden subcommand of this
// binary): the raw NATS subscriber or responder, or a triggerbus worker with
// no-op functions. The load driver is this process; the NATS server is a
// second child unless --url names one. It asserts nothing about speed; it
// fails only when a run delivers no events at all or a process fails.
package main
