package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestMain removes the programs the tests build (see proctest.Main).
func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// Bounded waits. They are ceilings for a loaded CI machine, never
// expectations of speed: a passing test returns long before them.
const (
	waitShort = 10 * time.Second
	waitLong  = 60 * time.Second
	poll      = 10 * time.Millisecond
)

// newMetrics returns worker metrics on a registry of their own, so that a
// test reads exactly what its worker counted.
func newMetrics(t *testing.T) *worker.Metrics {
	t.Helper()
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("worker.NewMetrics: %v", err)
	}
	return m
}

// startWorker starts a worker serving fns on nc and stops it when the test
// ends. Unlike proctest.StartWorker, Start and Stop are unbounded, and an
// error from the Stop always fails the test.
func startWorker(t *testing.T, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w := proctest.NewWorker(t, nc, cfg, fns...)
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("worker.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Errorf("worker.Stop: %v", err)
		}
	})
	return w
}

// newClient returns a publisher SDK client on a connection of its own to s.
func newClient(t *testing.T, s *server.Server, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(natstest.Connect(t, s), opts)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// fn is a Go function registration with the default timeout and policies.
func fn(ref, typ string, options []string, priority int, h handlers.Func) worker.Function {
	return worker.Function{Ref: ref, TriggerType: typ, Options: options, Priority: priority, Handler: h}
}

// cont is a function that counts its calls and returns CONTINUE.
func cont(calls *atomic.Int64) handlers.Func {
	return func(context.Context, *event.Event) (handlers.Result, error) {
		calls.Add(1)
		return handlers.Result{}, nil
	}
}

// deny is a function that counts its calls and refuses the action.
func deny(calls *atomic.Int64, code, message string) handlers.Func {
	return func(context.Context, *event.Event) (handlers.Result, error) {
		calls.Add(1)
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: code, ErrorMessage: message}, nil
	}
}

// denyBigServers refuses servers over 16 CPUs, the contract's example.
func denyBigServers(_ context.Context, ev *event.Event) (handlers.Result, error) {
	var in struct {
		CPU int `json:"cpu"`
	}
	if len(ev.Input) > 0 {
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, err
		}
	}
	if in.CPU > 16 {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "servers are limited to 16 CPUs"}, nil
	}
	return handlers.Result{ExitState: handlers.Success}, nil
}

// decide asks for a PRE decision and fails the test on an SDK error (which
// only a bad type, option or event causes).
func decide(t *testing.T, ctx context.Context, c *client.Client, typ, option string, ev *event.Event) *event.Decision {
	t.Helper()
	d, err := c.Decide(ctx, typ, option, ev)
	if err != nil {
		t.Fatalf("Decide(%s, %s): %v", typ, option, err)
	}
	return d
}

// request sends a raw PRE request, as a service without the SDK would, and
// returns the reply's body.
func request(t *testing.T, nc *nats.Conn, msg *nats.Msg) []byte {
	t.Helper()
	reply, err := nc.RequestMsg(msg, waitShort)
	if err != nil {
		t.Fatalf("request %s: %v", msg.Subject, err)
	}
	return reply.Data
}

// decodeDecision parses a PRE reply and fails the test if it is not one.
func decodeDecision(t *testing.T, data []byte) *event.Decision {
	t.Helper()
	d, err := event.DecodeDecision(data)
	if err != nil {
		t.Fatalf("DecodeDecision(%s): %v", data, err)
	}
	return d
}

// comparableDecision returns the fields of a decision's JSON that two answers to
// the same question share: everything but the event id and the timings.
func comparableDecision(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decision %s is not a JSON object: %v", data, err)
	}
	delete(m, "id")
	if fns, ok := m["functions"].([]any); ok {
		for _, f := range fns {
			if fm, ok := f.(map[string]any); ok {
				delete(fm, "ms")
			}
		}
	}
	return m
}

// encodeDecision returns the JSON of d as the worker sends it.
func encodeDecision(t *testing.T, d *event.Decision) []byte {
	t.Helper()
	data, err := d.Encode()
	if err != nil {
		t.Fatalf("encode decision: %v", err)
	}
	return data
}

// sameDecision fails the test unless two decision documents agree on every
// field but id and ms.
func sameDecision(t *testing.T, what string, a, b []byte) {
	t.Helper()
	ma, mb := comparableDecision(t, a), comparableDecision(t, b)
	if !reflect.DeepEqual(ma, mb) {
		t.Errorf("%s: decisions differ (ignoring id and ms):\n  %s\n  %s", what, a, b)
	}
}

// refs lists the refs of a decision's functions, in order.
func refs(d *event.Decision) []string {
	out := make([]string, len(d.Functions))
	for i, f := range d.Functions {
		out[i] = f.Ref
	}
	return out
}

// value reads one counter or gauge series.
func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// waitValue waits until the series reads want.
func waitValue(t *testing.T, what string, c prometheus.Collector, want float64) {
	t.Helper()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if got := value(c); got != want {
			return fmt.Errorf("%s = %v, want %v", what, got, want)
		}
		return nil
	})
}

// waitCount waits until an atomic counter reads want.
func waitCount(t *testing.T, what string, n *atomic.Int64, want int64) {
	t.Helper()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if got := n.Load(); got != want {
			return fmt.Errorf("%s = %d, want %d", what, got, want)
		}
		return nil
	})
}

// waitInterest waits until s has a subscription matching subject.
func waitInterest(t *testing.T, s *server.Server, subject string) {
	t.Helper()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if !s.GlobalAccount().SubscriptionInterest(subject) {
			return fmt.Errorf("no subscription on %s yet", subject)
		}
		return nil
	})
}

// recorder collects values from concurrent functions.
type recorder[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K][]V
}

func newRecorder[K comparable, V any]() *recorder[K, V] {
	return &recorder[K, V]{m: make(map[K][]V)}
}

func (r *recorder[K, V]) add(k K, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[k] = append(r.m[k], v)
}

// snapshot returns a copy of what was recorded.
func (r *recorder[K, V]) snapshot() map[K][]V {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[K][]V, len(r.m))
	for k, v := range r.m {
		out[k] = slices.Clone(v)
	}
	return out
}

func (r *recorder[K, V]) get(k K) []V {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.m[k])
}
