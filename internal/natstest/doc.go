// Package natstest starts real, embedded NATS servers for triggerbus tests.
//
// Every server listens on 127.0.0.1 with a random client port, runs in the
// test process, and is shut down by a [testing.TB.Cleanup] registered when it
// starts, so each test gets its own server and tests may use t.Parallel:
//
//	s := natstest.RunServer(t, natstest.WithJetStream())
//	nc := natstest.Connect(t, s)
//
// [RunCluster] starts a cluster of servers on loopback and returns once the
// routes form a full mesh (and, with JetStream, once the meta leader is
// elected). [RunSupercluster] starts clusters "A", "B", ... joined by
// gateways, with one JetStream meta group across them; [WaitInterest],
// [WaitNoInterest], [WaitGatewayQueueInterest] and
// [WaitNoGatewayQueueInterest] wait until subscriptions have propagated
// within a cluster and across the gateways. [Restart] replaces a server with a new one on the same port and
// JetStream store directory, to test reconnection.
//
// Tests never sleep to synchronise: poll with [CheckFor] or receive with
// [ChanRecv]; [WaitSettled] waits until a JetStream consumer has nothing
// left to deliver.
//
// Server logs are discarded. Set the environment variable NATSTEST_LOG to 1
// to send the servers' notices, warnings and errors to the test log, or to
// "debug" or "trace" for more.
package natstest
