package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// gather sends a request on subject to every responder and collects the
// replies: want of them, then whatever else arrives within a short grace,
// so that an extra reply is seen. It fails the test if fewer than want
// arrive within 5s.
func gather(t *testing.T, nc *nats.Conn, subject string, want int) []*nats.Msg {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < want {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s: %d replies of %d: %v", subject, len(out), want, err)
		}
		out = append(out, msg)
	}
	for {
		msg, err := sub.NextMsg(100 * time.Millisecond)
		if err != nil {
			return out
		}
		out = append(out, msg)
	}
}

func decodeAll[T any](t *testing.T, msgs []*nats.Msg) []T {
	t.Helper()
	out := make([]T, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data, &out[i]); err != nil {
			t.Fatalf("decode %s: %v", m.Data, err)
		}
	}
	return out
}

func noop(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil }

// newDiscoveryWorker starts a worker on its own connection to s.
func newDiscoveryWorker(t *testing.T, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w := startWorker(t, nc, cfg, fns...)
	if w.ServiceID() == "" {
		t.Fatal("ServiceID() is empty after Start")
	}
	return w
}

func TestDiscoveryPingAndInfo(t *testing.T) {
	s := natstest.RunServer(t)
	w1 := newDiscoveryWorker(t, natstest.Connect(t, s), worker.Config{Version: "v1.2.3"},
		fn("audit", "POST_CREATE", []string{"SERVER", "DISK"}, 0, noop),
		fn("quota", "PRE_CREATE", []string{"ANY"}, 0, noop))
	w2 := newDiscoveryWorker(t, natstest.Connect(t, s), worker.Config{Version: "v1.2.3"},
		fn("audit", "POST_CREATE", []string{"SERVER", "DISK"}, 0, noop),
		fn("quota", "PRE_CREATE", []string{"ANY"}, 0, noop))
	nc := natstest.Connect(t, s)

	pings := decodeAll[micro.Ping](t, gather(t, nc, "$SRV.PING.triggerbus", 2))
	if len(pings) != 2 {
		t.Fatalf("$SRV.PING.triggerbus: %d replies, want 2", len(pings))
	}
	var ids []string
	for _, p := range pings {
		if p.Name != worker.DefaultServiceName || p.Type != micro.PingResponseType || p.Version != "1.2.3" {
			t.Errorf("ping reply %+v, want name %s, version 1.2.3", p, worker.DefaultServiceName)
		}
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	wantIDs := []string{w1.ServiceID(), w2.ServiceID()}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("ping ids %v, want the workers' %v", ids, wantIDs)
	}
	// The generic form reaches them too.
	if n := len(gather(t, nc, "$SRV.PING", 2)); n != 2 {
		t.Errorf("$SRV.PING: %d replies, want 2", n)
	}

	infos := decodeAll[micro.Info](t, gather(t, nc, "$SRV.INFO.triggerbus", 2))
	if len(infos) != 2 {
		t.Fatalf("$SRV.INFO.triggerbus: %d replies, want 2", len(infos))
	}
	wantMeta := map[string]string{
		"prefix":        "trigger",
		"queue":         "trigger-workers",
		"delivery":      "core",
		"functions":     "2",
		"function_refs": "audit,quota",
		"subjects":      "trigger.POST_CREATE.DISK,trigger.POST_CREATE.SERVER,trigger.PRE_CREATE.*",
		"build_version": "v1.2.3",
	}
	for _, info := range infos {
		if info.Version != "1.2.3" || info.Description == "" || info.Type != micro.InfoResponseType {
			t.Errorf("info %+v", info)
		}
		for k, v := range wantMeta {
			if got := info.Metadata[k]; got != v {
				t.Errorf("info of %s: metadata[%s] = %q, want %q", info.ID, k, got, v)
			}
		}
		// One endpoint, the worker's own status endpoint; no trigger subject.
		if len(info.Endpoints) != 1 || info.Endpoints[0].Name != "status" ||
			info.Endpoints[0].Subject != "trigger.worker."+info.ID+".status" {
			t.Errorf("info of %s: endpoints %+v, want only the status endpoint", info.ID, info.Endpoints)
		}
	}
}

func TestDiscoveryStats(t *testing.T) {
	s := natstest.RunServer(t)
	w := newDiscoveryWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("deny", "PRE_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "NO"}, nil
		}),
		fn("boom", "PRE_DELETE", []string{"ANY"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{}, errors.New("boom")
		}))
	nc := natstest.Connect(t, s)
	for _, subj := range []string{"trigger.PRE_CREATE.SERVER", "trigger.PRE_CREATE.SERVER", "trigger.PRE_DELETE.DISK"} {
		if _, err := nc.Request(subj, []byte(`{}`), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	looped := nats.NewMsg("trigger.PRE_CREATE.SERVER")
	looped.Header.Set("Trigger-Origin", "fn/1")
	if _, err := nc.RequestMsg(looped, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := worker.ServiceStats{
		Ready: true, Functions: 2,
		EventsReceived: 4, EventsDropped: 1, EventsHandled: 3,
		Invocations: 3, Errors: 1, Failed: 2,
		PreAllowed: 1, PreDenied: 3,
	}

	stats := decodeAll[micro.Stats](t, gather(t, nc, "$SRV.STATS.triggerbus."+w.ServiceID(), 1))
	if len(stats) != 1 || len(stats[0].Endpoints) != 1 {
		t.Fatalf("stats %+v, want one reply with one endpoint", stats)
	}
	var got worker.ServiceStats
	if err := json.Unmarshal(stats[0].Endpoints[0].Data, &got); err != nil {
		t.Fatalf("stats data %s: %v", stats[0].Endpoints[0].Data, err)
	}
	if got != want {
		t.Errorf("$SRV.STATS data = %+v\nwant %+v", got, want)
	}

	reply, err := nc.Request("trigger.worker."+w.ServiceID()+".status", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got = worker.ServiceStats{}
	if err := json.Unmarshal(reply.Data, &got); err != nil {
		t.Fatalf("status reply %s: %v", reply.Data, err)
	}
	if got != want {
		t.Errorf("status = %+v\nwant %+v", got, want)
	}
	if got := w.Stats(); got != want {
		t.Errorf("Stats() = %+v\nwant %+v", got, want)
	}
}

func TestDiscoveryReloadAndStop(t *testing.T) {
	s := natstest.RunServer(t)
	w := newDiscoveryWorker(t, natstest.Connect(t, s), worker.Config{Name: "fleet-a"},
		fn("one", "POST_DELETE", []string{"ANY"}, 0, noop))
	other := newDiscoveryWorker(t, natstest.Connect(t, s), worker.Config{Name: "fleet-a"},
		fn("one", "POST_DELETE", []string{"ANY"}, 0, noop))
	nc := natstest.Connect(t, s)

	// A reload that changes nothing keeps the instance.
	oldID := w.ServiceID()
	same := []worker.Function{fn("one", "POST_DELETE", []string{"ANY"}, 0, noop)}
	if err := w.Replace(context.Background(), same...); err != nil {
		t.Fatal(err)
	}
	if w.ServiceID() != oldID {
		t.Errorf("reload with the same functions replaced the service: id %s, was %s", w.ServiceID(), oldID)
	}

	// A reload that changes the functions re-announces the worker.
	set := []worker.Function{
		fn("one", "POST_DELETE", []string{"ANY"}, 0, noop),
		fn("two", "PRE_AUTH", nil, 0, noop),
	}
	if err := w.Replace(context.Background(), set...); err != nil {
		t.Fatal(err)
	}
	newID := w.ServiceID()
	if newID == oldID || newID == "" {
		t.Fatalf("service id after reload = %q, was %q", newID, oldID)
	}
	infos := decodeAll[micro.Info](t, gather(t, nc, "$SRV.INFO.fleet-a."+newID, 1))
	if len(infos) != 1 || infos[0].Metadata["functions"] != "2" || infos[0].Metadata["function_refs"] != "one,two" ||
		infos[0].Metadata["subjects"] != "trigger.POST_DELETE.*,trigger.PRE_AUTH.*" || infos[0].Version != "0.0.0-dev" {
		t.Errorf("info after reload: %+v", infos)
	}
	if _, err := nc.Request("$SRV.PING.fleet-a."+oldID, nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("ping of the replaced instance: err = %v, want no responders", err)
	}
	if n := len(gather(t, nc, "$SRV.PING.fleet-a", 2)); n != 2 {
		t.Errorf("$SRV.PING.fleet-a after reload: %d replies, want 2", n)
	}

	// A stopped worker is no longer listed; the other one still is.
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.ServiceID() != "" {
		t.Errorf("ServiceID() after Stop = %q, want empty", w.ServiceID())
	}
	pings := decodeAll[micro.Ping](t, gather(t, nc, "$SRV.PING.fleet-a", 1))
	if len(pings) != 1 || pings[0].ID != other.ServiceID() {
		t.Errorf("pings after Stop: %+v, want only %s", pings, other.ServiceID())
	}
	// Replace after Stop is refused and announces nothing.
	if err := w.Replace(context.Background(), set...); !errors.Is(err, worker.ErrStopped) {
		t.Errorf("Replace after Stop: %v, want ErrStopped", err)
	}
}

func TestDiscoveryBadName(t *testing.T) {
	s := natstest.RunServer(t)
	w, err := worker.New(natstest.Connect(t, s), worker.Config{Name: "trigger bus"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	if err := w.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "service name") {
		t.Errorf("Start with service name %q: err = %v, want a service name error", "trigger bus", err)
	}
}

func TestServiceVersion(t *testing.T) {
	tests := []struct{ give, want string }{
		{"", "0.0.0-dev"},
		{"dev", "0.0.0-dev"},
		{"(devel)", "0.0.0-devel"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3", "1.2.3"},
		{" v1.2.3\n", "1.2.3"},
		{"v1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"},
		{"v1.4.0-3-gdeadbee-dirty", "1.4.0-3-gdeadbee-dirty"},
		{"v0.0.0-20260101120000-abcdef123456", "0.0.0-20260101120000-abcdef123456"},
		{"nightly/42", "0.0.0-nightly-42"},
		{"1.2", "0.0.0-1.2"},
		{"01.2.3", "0.0.0-n01.2.3"},
		{"version", "0.0.0-version"},
		{"ünïcode", "0.0.0-n-code"},
		{"...", "0.0.0-dev"},
	}
	for _, tt := range tests {
		if got := worker.ServiceVersion(tt.give); got != tt.want {
			t.Errorf("ServiceVersion(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
