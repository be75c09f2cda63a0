package natstest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

// TestRunSupercluster: a queue group's requests are answered in the
// requester's cluster while it has a member there, and in the other cluster
// once it has none.
func TestRunSupercluster(t *testing.T) {
	t.Parallel()
	sc := natstest.RunSupercluster(t, 2, 2)
	if len(sc) != 2 || len(sc[0]) != 2 || len(sc[1]) != 2 {
		t.Fatalf("RunSupercluster(t, 2, 2) returned %d clusters", len(sc))
	}
	for i, name := range []string{"A", "B"} {
		for j, s := range sc[i] {
			if s.ClusterName() != name || s.Name() != name+"-"+string(rune('1'+j)) {
				t.Errorf("server %d of cluster %d is %s in cluster %s", j, i, s.Name(), s.ClusterName())
			}
		}
	}

	const subject, queue = "svc.echo", "workers"
	answer := func(nc *nats.Conn, who string) *nats.Subscription {
		sub, err := nc.QueueSubscribe(subject, queue, func(m *nats.Msg) { _ = m.Respond([]byte(who)) })
		if err != nil {
			t.Fatalf("QueueSubscribe: %v", err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		return sub
	}
	subA := answer(natstest.Connect(t, sc[0][1]), "A")
	answer(natstest.Connect(t, sc[1][0]), "B")
	natstest.WaitInterest(t, sc[0], subject, 30*time.Second)
	natstest.WaitInterest(t, sc[1], subject, 30*time.Second)
	natstest.WaitGatewayQueueInterest(t, sc[0], "B", subject, queue, 30*time.Second)
	natstest.WaitGatewayQueueInterest(t, sc[1], "A", subject, queue, 30*time.Second)

	req := natstest.Connect(t, sc[0][0])
	ask := func() string {
		t.Helper()
		m, err := req.Request(subject, nil, 10*time.Second)
		if err != nil {
			t.Fatalf("Request: %v", err)
		}
		return string(m.Data)
	}
	for range 20 {
		if got := ask(); got != "A" {
			t.Fatalf("answered by cluster %s while cluster A has a member", got)
		}
	}

	if err := subA.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	natstest.WaitNoInterest(t, sc[0], subject, 30*time.Second)
	natstest.WaitNoGatewayQueueInterest(t, sc[1], "A", subject, queue, 30*time.Second)
	for range 20 {
		if got := ask(); got != "B" {
			t.Fatalf("answered by cluster %s after cluster A's member left", got)
		}
	}

	// A restarted node keeps its gateway port and joins the supercluster
	// again: it learns B's interest through its gateway.
	port := sc[0][1].GatewayAddr().Port
	restarted := natstest.Restart(t, sc[0][1])
	if got := restarted.GatewayAddr().Port; got != port {
		t.Errorf("restarted node's gateway port %d, want %d", got, port)
	}
	natstest.WaitGatewayQueueInterest(t, []*server.Server{restarted}, "B", subject, queue, 30*time.Second)
}

// TestRunSuperclusterJetStream: one meta group spans both clusters; a
// stream lives in the cluster of the client that created it, keeps that
// placement when a client of the other cluster updates it, and is read and
// written from either cluster.
func TestRunSuperclusterJetStream(t *testing.T) {
	t.Parallel()
	sc := natstest.RunSupercluster(t, 2, 2, natstest.WithJetStream())
	var names []string
	for _, s := range slices.Concat(sc...) {
		if s.StoreDir() == "" {
			t.Fatalf("server %s has no JetStream store dir", s.Name())
		}
		names = append(names, s.Name())
	}
	var peers []string
	for _, s := range slices.Concat(sc...) {
		if s.JetStreamIsLeader() {
			peers = s.JetStreamClusterPeers()
		}
	}
	if len(peers) != 4 {
		t.Fatalf("meta group peers %v, want the 4 servers %v", peers, names)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	jsA := jetStream(t, natstest.Connect(t, sc[0][0]))
	jsB := jetStream(t, natstest.Connect(t, sc[1][1]))
	cfg := jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}
	st, err := jsB.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateOrUpdateStream from B: %v", err)
	}
	if got := st.CachedInfo().Cluster.Name; got != "B" {
		t.Fatalf("stream created from cluster B lives in %q", got)
	}
	cfg.MaxMsgs = 100
	if st, err = jsA.CreateOrUpdateStream(ctx, cfg); err != nil {
		t.Fatalf("CreateOrUpdateStream from A: %v", err)
	}
	if got := st.CachedInfo().Cluster.Name; got != "B" || st.CachedInfo().Config.MaxMsgs != 100 {
		t.Fatalf("stream updated from cluster A: in %q with max msgs %d, want B and 100", got, st.CachedInfo().Config.MaxMsgs)
	}
	if _, err := jsA.Publish(ctx, "work.1", []byte("x")); err != nil {
		t.Fatalf("Publish from A: %v", err)
	}
	if m, err := st.GetLastMsgForSubject(ctx, "work.1"); err != nil || string(m.Data) != "x" {
		t.Fatalf("GetLastMsgForSubject from A = %v, %v", m, err)
	}
}
