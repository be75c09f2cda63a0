// Package natsconn is how a triggerbus program gets its NATS connection:
// [Options] turns the connection settings of the configuration into nats.go
// options (reconnect forever, state changes logged and counted), and
// [StartEmbedded] starts the in-process NATS server a worker runs when no
// server URL is configured. [LoadContext] reads the connection contexts the
// nats CLI saves (nats context save), for the --context flag.
//
// Both live here, outside pkg/worker, so that a Go program embedding a
// worker links nats-server only if it starts one itself. The connection
// metrics stay the worker's: [Events] takes the gauge and counter to update
// rather than the worker's metrics type.
//
// The two halves share one package because every program that needs one
// needs the other (trigger-worker, trigger-bench) or already links
// nats-server (the tests, through internal/natstest); splitting them would
// buy no smaller binary.
package natsconn
