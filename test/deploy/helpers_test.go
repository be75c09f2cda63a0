package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// repoPath is the path of a file of the repository, given relative to its
// root with slashes.
func repoPath(rel string) string {
	return filepath.Join("..", "..", filepath.FromSlash(rel))
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeYAML decodes a repository file into v.
func decodeYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readRepoFile(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// exportedMetrics is what a worker process exports, as cmd/trigger-worker
// wires it: the Go and process collectors, trigger_build_info, the
// worker's metrics and its reload metrics.
type exportedMetrics struct {
	// families maps each metric family name to its type.
	families map[string]dto.MetricType
}

// has reports whether a query may use name: a family, or the _bucket, _sum
// or _count series of a histogram or summary family.
func (e exportedMetrics) has(name string) bool {
	if _, ok := e.families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch e.families[base] {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// triggerFamilies returns the names of the trigger_ families, sorted.
func (e exportedMetrics) triggerFamilies() []string {
	var out []string
	for name := range e.families {
		if strings.HasPrefix(name, "trigger_") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// workerMetrics runs a worker on a real NATS server through a tiny workload
// and returns the metrics it exports. A vector with no series yet (for
// example trigger_redeliveries_total, which needs durable delivery and a
// failure) is not gathered, so the families registered are added from the
// registry's descriptions, as counters or gauges (histograms always have
// their series from the start: one per registered function).
func workerMetrics(t *testing.T) exportedMetrics {
	t.Helper()
	reg := prometheus.NewRegistry()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trigger_build_info",
		Help: "Build of the running trigger-worker; always 1.",
	}, []string{"version", "revision", "goversion"})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
	} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	buildInfo.WithLabelValues("dev", "unknown", runtime.Version()).Set(1)
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.NewReloadMetrics(reg); err != nil {
		t.Fatal(err)
	}

	s := natstest.RunServer(t)
	opts, err := natsconn.Options(natsconn.Config{}, natsconn.Events{Connected: m.NATSConnected, SlowConsumers: m.SlowConsumers})
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s, opts...)
	set := []worker.Function{
		{Ref: "audit", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Handler: handlers.Func(
			func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{ExitState: handlers.Success}, nil
			})},
		{Ref: "quota", TriggerType: "PRE_CREATE", Options: []string{"ANY"}, FailurePolicy: worker.FailOpen, Handler: handlers.Func(
			func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{}, errors.New("quota service unavailable")
			})},
	}
	w, err := worker.New(nc, worker.Config{Metrics: m, LoopKey: []byte("fleet key")}, set...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	// A POST event with a forged loop flag (counted as rejected, then run)
	// and a PRE request whose function fails open.
	pub := natstest.Connect(t, s)
	msg := newMsg("trigger.POST_CREATE.SERVER", `{"input":{"cpu":2}}`)
	msg.Header.Set(subjects.HeaderOrigin, "forged/1")
	if err := pub.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Request("trigger.PRE_CREATE.SERVER", []byte(`{"input":{"cpu":2}}`), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if testutil.ToFloat64(m.FunctionInvocations.WithLabelValues("audit", "POST_CREATE", worker.ResultSuccess)) != 1 {
			return errors.New("waiting for the POST event")
		}
		return nil
	})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	e := exportedMetrics{families: make(map[string]dto.MetricType)}
	for _, mf := range mfs {
		e.families[mf.GetName()] = mf.GetType()
	}
	descs := make(chan *prometheus.Desc)
	go func() { // ends when Describe returns; the loop below drains descs until then
		reg.Describe(descs)
		close(descs)
	}()
	var described []string
	for d := range descs {
		name := descName(d)
		if _, ok := e.families[name]; !ok && name != "" {
			e.families[name] = dto.MetricType_UNTYPED
			described = append(described, name)
		}
	}
	slices.Sort(described)
	t.Logf("registered without a series after the workload: %v", slices.Compact(described))
	return e
}

var descFQName = regexp.MustCompile(`fqName: "([^"]+)"`)

// descName is the metric name of d. Desc has no accessor for it; its
// String form is `Desc{fqName: "name", ...}`.
func descName(d *prometheus.Desc) string {
	if m := descFQName.FindStringSubmatch(d.String()); m != nil {
		return m[1]
	}
	return ""
}

func newMsg(subject, data string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(data)
	return m
}

// promQL extraction.

var (
	// Removed before looking for metric names: strings, label matchers,
	// range and subquery selectors, and grouping label lists.
	pqStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	pqMatchers = regexp.MustCompile(`\{[^}]*\}`)
	pqRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	pqGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// Tokens: a Grafana variable, a number, or an identifier.
	pqTokens = regexp.MustCompile(`\$\{?\w+\}?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// Words of the language that are not metric names.
	pqKeywords = []string{
		"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
		"and", "or", "unless", "offset", "start", "end", "inf", "nan", "Inf", "NaN",
	}
)

// metricNames returns the metric names a PromQL expression selects (Grafana
// variables such as $job and $__rate_interval allowed).
func metricNames(expr string) []string {
	s := pqStrings.ReplaceAllString(expr, " ")
	s = pqMatchers.ReplaceAllString(s, " ")
	s = pqRanges.ReplaceAllString(s, " ")
	s = pqGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range pqTokens.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] == '$' || tok[0] >= '0' && tok[0] <= '9' || slices.Contains(pqKeywords, tok) {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		out = append(out, tok)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkExpr reports the metric names of expr that the worker does not
// export; `up` is allowed too, as Prometheus makes it for every target.
func checkExpr(t *testing.T, where, expr string, exp exportedMetrics) []string {
	t.Helper()
	names := metricNames(expr)
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range names {
		if n != "up" && !exp.has(n) {
			t.Errorf("%s: metric %s is not exported by trigger-worker (expr %q)", where, n, expr)
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		give string
		want []string
	}{
		{`up{job="trigger-worker"} == 0`, []string{"up"}},
		{`sum by (trigger_type) (rate(trigger_events_received_total{job="$job", instance=~"$instance"}[$__rate_interval]))`,
			[]string{"trigger_events_received_total"}},
		{`histogram_quantile(0.99, sum by (function, le) (rate(trigger_function_duration_seconds_bucket{function=~"a|b"}[5m]))) > 2`,
			[]string{"trigger_function_duration_seconds_bucket"}},
		{`sum(rate(a_total{x="by (y)"}[1m])) without (z) / on(instance) group_left(version) b_info`, []string{"a_total", "b_info"}},
		{`absent(up{job="trigger-worker"} == 1)`, []string{"up"}},
		{`trigger_nats_connected == 0 and bool 1e3`, []string{"trigger_nats_connected"}},
		{`rate(process_cpu_seconds_total{instance=~"${instance}"}[$__rate_interval])`, []string{"process_cpu_seconds_total"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// linesOf splits data into trimmed non-empty lines.
func linesOf(data []byte) []string {
	var out []string
	for l := range bytes.Lines(data) {
		if s := strings.TrimSpace(string(l)); s != "" {
			out = append(out, s)
		}
	}
	return out
}
