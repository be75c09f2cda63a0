package faults_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed. A passing test returns long before them.
const (
	waitShort = 15 * time.Second
	waitLong  = 60 * time.Second
	poll      = 10 * time.Millisecond
)

// scale returns n, or small under the race detector or -short.
func scale(n, small int) int {
	if raceEnabled || testing.Short() {
		return small
	}
	return n
}

// TestMain removes the programs the tests build (see proctest.Main).
func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// startWorkerProcess runs `trigger-worker run -c cfg` as a child process
// that failure messages call name (see proctest.StartWith). If the test
// fails, the last 60 lines of its output are logged.
func startWorkerProcess(t testing.TB, name, cfg string) *proctest.Process {
	t.Helper()
	return proctest.StartWith(t, proctest.Options{Name: name, LogTail: 60},
		proctest.Build(t, "./cmd/trigger-worker"), "run", "-c", cfg)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// scrape reads a /metrics endpoint.
func scrape(base string) (map[string]*dto.MetricFamily, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sum adds up the values of every series of a counter or gauge family
// whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return 0
	}
	var total float64
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// newMetrics returns worker metrics on a registry of their own.
func newMetrics(t testing.TB) (*worker.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatalf("worker.NewMetrics: %v", err)
	}
	return m, reg
}

// connectWorker connects to url with the options trigger-worker uses
// (reconnect forever, state changes logged and in metrics).
func connectWorker(t testing.TB, url string, log *slog.Logger, m *worker.Metrics, extra ...nats.Option) *nats.Conn {
	t.Helper()
	opts, err := natsconn.Options(natsconn.Config{URL: url}, natsconn.Events{Logger: log, Connected: m.NATSConnected, SlowConsumers: m.SlowConsumers})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// stopWorker stops w and fails the test if Stop reports an error.
func stopWorker(t testing.TB, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Errorf("worker.Stop: %v", err)
	}
}

// waitInterest waits until the global account of s has a subscription
// matching subject (local or, in a cluster, through a route).
func waitInterest(t testing.TB, s *server.Server, subject string) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !s.GlobalAccount().SubscriptionInterest(subject) {
			return fmt.Errorf("server %s: no interest in %s yet", s.Name(), subject)
		}
		return nil
	})
}

// idSet is a set of event ids safe for concurrent use, counting how often
// each was added.
type idSet struct {
	mu sync.Mutex
	m  map[string]int
}

func newIDSet() *idSet { return &idSet{m: map[string]int{}} }

func (s *idSet) add(id string) {
	s.mu.Lock()
	s.m[id]++
	s.mu.Unlock()
}

func (s *idSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// missing returns the ids of ids not in s.
func (s *idSet) missing(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if s.m[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// dups returns how many additions were repeats.
func (s *idSet) dups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.m {
		n += c - 1
	}
	return n
}

// waitAll waits until every one of ids is in s.
func waitAll(t testing.TB, what string, s *idSet, ids []string) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if m := s.missing(ids); len(m) > 0 {
			return fmt.Errorf("%s: %d of %d events not handled, e.g. %s", what, len(m), len(ids), m[0])
		}
		return nil
	})
}

// value reads one counter or gauge series.
func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
