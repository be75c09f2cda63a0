// Package node holds the test that runs the Node.js client of this
// directory (client.js, a triggerbus publisher on the nats package from
// npm) against a real worker on an embedded NATS server with JetStream:
// POST events, PRE decisions with Trigger-Deadline, NO_TRIGGER, the
// SHUTTING_DOWN retry, and the fleet-down refusal (NO_WORKER) that reads
// the PRE registry with both keys <TYPE>.<OPTION> and <TYPE>.ANY, as the
// Go SDK does. It has no Go code to import.
package node
