// Command embed runs a trigger worker inside a Go program, with one Go
// function and (unless --nats-url names a server) a NATS server of its own.
//
//	go run ./examples/embed
//	go run ./cmd/trigger-worker emit PRE_CREATE SERVER '{"input":{"cpu":64}}'
//
// The function, deny_big_servers, refuses PRE_CREATE SERVER for servers
// over 16 CPUs. See README.md beside this file.
package main
