package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// The fixed workload of the metrics tests (see runWorkload).
const (
	postHandled = 5 // POST_CREATE.SERVER events that run functions
	postLooped  = 3 // ... flagged with Trigger-Origin: dropped
	postInvalid = 2 // ... whose payload is not JSON: dropped
	preAllowed  = 4 // PRE_CREATE.SERVER requests allowed by pre_quota
	preDenied   = 2 // ... denied by pre_quota
)

// workloadFunctions are the functions the workload exercises: every result
// (success, continue, failed, error, timeout) and a fail-open.
func workloadFunctions() []worker.Function {
	quota := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in struct{ CPU int }
		_ = json.Unmarshal(ev.Input, &in)
		if in.CPU > 16 {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED"}, nil
		}
		return handlers.Result{}, nil
	}
	hang := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, ctx.Err()
	}
	return []worker.Function{
		{Ref: "post_audit", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: handlers.Func(
			func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{ExitState: handlers.Success}, nil
			})},
		{Ref: "post_notify", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Priority: 10, Handler: handlers.Func(
			func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })},
		{Ref: "pre_quota", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: handlers.Func(quota)},
		{Ref: "pre_slow", TriggerType: "PRE_DELETE", Options: []string{"ANY"}, Timeout: 50 * time.Millisecond,
			Handler: handlers.Func(hang)},
		{Ref: "pre_flaky", TriggerType: "PRE_MODIFY", Options: []string{"ANY"}, FailurePolicy: worker.FailOpen,
			Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{}, errors.New("backend unavailable")
			})},
	}
}

// newMetricsWorker starts a worker with the workload functions and its
// metrics on a registry of its own.
func newMetricsWorker(t *testing.T) (*prometheus.Registry, *worker.Metrics, *nats.Conn) {
	t.Helper()
	s := natstest.RunServer(t)
	reg := prometheus.NewRegistry()
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m}, workloadFunctions()...)
	return reg, m, natstest.Connect(t, s)
}

// runWorkload sends the fixed workload and waits until the worker has
// handled all of it. PRE requests are answered before they return; POST
// events are waited for through the received and dropped counters.
func runWorkload(t *testing.T, nc *nats.Conn, m *worker.Metrics) {
	t.Helper()
	publish := func(msg *nats.Msg) {
		t.Helper()
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range postHandled {
		msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
		msg.Data = fmt.Appendf(nil, `{"input":{"n":%d}}`, i)
		publish(msg)
	}
	for range postLooped {
		msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
		msg.Header.Set(subjects.HeaderOrigin, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
		publish(msg)
	}
	for range postInvalid {
		msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
		msg.Data = []byte("not json")
		publish(msg)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	decide := func(subject, input string, wantAllowed bool) {
		t.Helper()
		reply, err := nc.Request(subject, []byte(`{"input":`+input+`}`), 10*time.Second)
		if err != nil {
			t.Fatalf("request %s: %v", subject, err)
		}
		d, err := event.DecodeDecision(reply.Data)
		if err != nil {
			t.Fatalf("decision of %s: %v", subject, err)
		}
		if d.Allowed != wantAllowed {
			t.Fatalf("%s %s: allowed = %v, want %v (%+v)", subject, input, d.Allowed, wantAllowed, d)
		}
	}
	for range preAllowed {
		decide("trigger.PRE_CREATE.SERVER", `{"cpu":2}`, true)
	}
	for range preDenied {
		decide("trigger.PRE_CREATE.SERVER", `{"cpu":64}`, false)
	}
	decide("trigger.PRE_DELETE.SERVER", `{}`, false) // pre_slow times out, fail closed
	decide("trigger.PRE_MODIFY.SERVER", `{}`, true)  // pre_flaky errors, fail open

	wantPost := float64(postHandled + postLooped + postInvalid)
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		got := testutil.ToFloat64(m.EventsReceived.WithLabelValues("POST_CREATE", "SERVER"))
		ran := testutil.ToFloat64(m.FunctionInvocations.WithLabelValues("post_notify", "POST_CREATE", worker.ResultContinue))
		inFlight := testutil.ToFloat64(m.FunctionsInFlight)
		if got != wantPost || ran != postHandled || inFlight != 0 {
			return fmt.Errorf("POST_CREATE received %v of %v, post_notify ran %v of %d, %v in flight",
				got, wantPost, ran, postHandled, inFlight)
		}
		return nil
	})
}

func TestMetricsLint(t *testing.T) {
	reg, m, nc := newMetricsWorker(t)
	runWorkload(t, nc, m)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsSeriesBeforeEvents(t *testing.T) {
	_, m, _ := newMetricsWorker(t)
	// A function's call series come with its first call: a worker with
	// thousands of functions keeps series only for those that run.
	if got := testutil.CollectAndCount(m.FunctionInvocations); got != 0 {
		t.Errorf("trigger_function_invocations_total has %d series before any event, want 0", got)
	}
	if got := testutil.CollectAndCount(m.FunctionDuration); got != 0 {
		t.Errorf("trigger_function_duration_seconds has %d series before any call, want 0", got)
	}
	// The series alerts count from zero exist where they can occur: the
	// fail-open counter of the one fail-open PRE function; no dead letters
	// without durable delivery.
	if got := testutil.CollectAndCount(m.PreFailOpen); got != 1 {
		t.Errorf("trigger_pre_fail_open_total has %d series, want 1 (pre_flaky)", got)
	}
	if v := testutil.ToFloat64(m.PreFailOpen.WithLabelValues("pre_flaky")); v != 0 {
		t.Errorf("pre_fail_open{pre_flaky} = %v before any event, want 0", v)
	}
	if got := testutil.CollectAndCount(m.DeadLetters) + testutil.CollectAndCount(m.DeadLettersCut); got != 0 {
		t.Errorf("dead-letter counters have %d series without durable delivery, want 0", got)
	}
	if got, want := testutil.CollectAndCount(m.FunctionsRegistered), len(subjects.Types()); got != want {
		t.Errorf("trigger_functions_registered has %d series, want %d (one per trigger type)", got, want)
	}
	if got := testutil.CollectAndCount(m.EventsReceived); got != 0 {
		t.Errorf("trigger_events_received_total has %d series before any event, want 0", got)
	}
	// Every trigger type × reason reads 0, so rate() works from the start.
	if got, want := testutil.CollectAndCount(m.EventsDropped), 3*len(subjects.Types()); got != want {
		t.Errorf("trigger_events_dropped_total has %d series, want %d", got, want)
	}
}

// TestMetricsSeriesOnFirstUse: after the workload, the call series are
// exactly the function × result pairs that happened, and one histogram per
// function that ran.
func TestMetricsSeriesOnFirstUse(t *testing.T) {
	_, m, nc := newMetricsWorker(t)
	runWorkload(t, nc, m)
	ch := make(chan prometheus.Metric, 1024)
	m.FunctionInvocations.Collect(ch)
	close(ch)
	ran := map[string]bool{}
	n := 0
	for metric := range ch {
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatal(err)
		}
		if pb.GetCounter().GetValue() == 0 {
			t.Errorf("series %v reads 0: created before its first use", pb.GetLabel())
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "function" {
				ran[l.GetValue()] = true
			}
		}
		n++
	}
	if n == 0 || n > len(workloadFunctions())*5 {
		t.Errorf("trigger_function_invocations_total has %d series, want between 1 and functions × results", n)
	}
	if got := testutil.CollectAndCount(m.FunctionDuration); got != len(ran) {
		t.Errorf("trigger_function_duration_seconds has %d series, want %d (the functions that ran)", got, len(ran))
	}
}

func TestMetricsWorkload(t *testing.T) {
	_, m, nc := newMetricsWorker(t)
	runWorkload(t, nc, m)

	val := func(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
	received := func(typ string) float64 { return val(m.EventsReceived.WithLabelValues(typ, "SERVER")) }
	dropped := func(typ, reason string) float64 { return val(m.EventsDropped.WithLabelValues(typ, reason)) }
	calls := func(ref, typ, result string) float64 {
		return val(m.FunctionInvocations.WithLabelValues(ref, typ, result))
	}
	decisions := func(typ, d string) float64 { return val(m.PreDecisions.WithLabelValues(typ, d)) }

	type check struct {
		name      string
		got, want float64
	}
	checks := []check{
		// Received = handled + dropped, per type.
		{"received POST_CREATE", received("POST_CREATE"), postHandled + postLooped + postInvalid},
		{"received POST_CREATE = handled + dropped", received("POST_CREATE"),
			calls("post_audit", "POST_CREATE", worker.ResultSuccess) +
				dropped("POST_CREATE", worker.ReasonTriggerOriginated) + dropped("POST_CREATE", worker.ReasonInvalid) +
				dropped("POST_CREATE", worker.ReasonExpired)},
		{"received PRE_CREATE = decisions", received("PRE_CREATE"),
			decisions("PRE_CREATE", "allowed") + decisions("PRE_CREATE", "denied")},
		{"received PRE_DELETE", received("PRE_DELETE"), 1},
		{"received PRE_MODIFY", received("PRE_MODIFY"), 1},

		{"dropped loop flag", dropped("POST_CREATE", worker.ReasonTriggerOriginated), postLooped},
		{"dropped invalid", dropped("POST_CREATE", worker.ReasonInvalid), postInvalid},
		{"dropped expired", dropped("POST_CREATE", worker.ReasonExpired), 0},
		{"dropped PRE_CREATE invalid", dropped("PRE_CREATE", worker.ReasonInvalid), 0},

		{"post_audit success", calls("post_audit", "POST_CREATE", worker.ResultSuccess), postHandled},
		{"post_audit continue", calls("post_audit", "POST_CREATE", worker.ResultContinue), 0},
		{"post_notify continue", calls("post_notify", "POST_CREATE", worker.ResultContinue), postHandled},
		{"pre_quota continue", calls("pre_quota", "PRE_CREATE", worker.ResultContinue), preAllowed},
		{"pre_quota failed", calls("pre_quota", "PRE_CREATE", worker.ResultFailed), preDenied},
		{"pre_quota error", calls("pre_quota", "PRE_CREATE", worker.ResultError), 0},
		{"pre_slow timeout", calls("pre_slow", "PRE_DELETE", worker.ResultTimeout), 1},
		{"pre_slow error", calls("pre_slow", "PRE_DELETE", worker.ResultError), 0},
		{"pre_flaky error", calls("pre_flaky", "PRE_MODIFY", worker.ResultError), 1},

		{"PRE_CREATE allowed", decisions("PRE_CREATE", "allowed"), preAllowed},
		{"PRE_CREATE denied", decisions("PRE_CREATE", "denied"), preDenied},
		{"PRE_DELETE denied (timeout, fail closed)", decisions("PRE_DELETE", "denied"), 1},
		{"PRE_DELETE allowed", decisions("PRE_DELETE", "allowed"), 0},
		{"PRE_MODIFY allowed (fail open)", decisions("PRE_MODIFY", "allowed"), 1},

		{"fail open pre_flaky", val(m.PreFailOpen.WithLabelValues("pre_flaky")), 1},
		{"fail open pre_slow", val(m.PreFailOpen.WithLabelValues("pre_slow")), 0},

		{"in flight", val(m.FunctionsInFlight), 0},
		{"registered POST_CREATE", val(m.FunctionsRegistered.WithLabelValues("POST_CREATE")), 2},
		{"registered PRE_CREATE", val(m.FunctionsRegistered.WithLabelValues("PRE_CREATE")), 1},
		{"registered PRE_DELETE", val(m.FunctionsRegistered.WithLabelValues("PRE_DELETE")), 1},
		{"registered PRE_MODIFY", val(m.FunctionsRegistered.WithLabelValues("PRE_MODIFY")), 1},
		{"registered POST_DELETE", val(m.FunctionsRegistered.WithLabelValues("POST_DELETE")), 0},
		{"origin rejected series (one per type, created at 0)", float64(testutil.CollectAndCount(m.OriginRejected)), float64(len(subjects.Types()))},
		{"origin rejected", testutil.ToFloat64(m.OriginRejected.WithLabelValues("POST_CREATE")), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Every call is observed once in the duration histogram.
	wantObs := map[string]uint64{"post_audit": postHandled, "post_notify": postHandled,
		"pre_quota": preAllowed + preDenied, "pre_slow": 1, "pre_flaky": 1}
	for ref, want := range wantObs {
		h, ok := m.FunctionDuration.WithLabelValues(ref, typeOfRef(ref)).(prometheus.Histogram)
		if !ok {
			t.Fatalf("duration of %s is not a histogram", ref)
		}
		if got := histogramCount(t, h); got != want {
			t.Errorf("duration observations of %s = %d, want %d", ref, got, want)
		}
	}
}

func typeOfRef(ref string) string {
	for _, f := range workloadFunctions() {
		if f.Ref == ref {
			return f.TriggerType
		}
	}
	return ""
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var pb dto.Metric
	if err := h.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}

// TestMetricsGolden compares the exposition of the dropped-events and
// invocation counters after the fixed workload with testdata/metrics.golden
// (go test -run TestMetricsGolden -update rewrites it).
func TestMetricsGolden(t *testing.T) {
	reg, m, nc := newMetricsWorker(t)
	runWorkload(t, nc, m)
	names := []string{"trigger_events_dropped_total", "trigger_function_invocations_total"}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, mf := range mfs {
			if slices.Contains(names, mf.GetName()) {
				if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(string(want)), names...); err != nil {
		t.Errorf("metrics differ from %s (rerun with -update if the change is intended):\n%v", golden, err)
	}
}

func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := worker.NewMetrics(reg); err != nil {
		t.Fatalf("first NewMetrics: %v", err)
	}
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("second NewMetrics panicked: %v", v)
			}
		}()
		_, err = worker.NewMetrics(reg)
	}()
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second NewMetrics on one registry: err = %v, want a prometheus.AlreadyRegisteredError", err)
	}
}
