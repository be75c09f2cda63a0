package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// decisionRig is a JetStream server with a worker whose decision log is on,
// serving PRE_CREATE: SERVER is allowed, DISK denied (QUOTA), NETWORK times
// out.
type decisionRig struct {
	nc      *nats.Conn // the caller's
	js      jetstream.JetStream
	metrics *worker.Metrics
	scheme  subjects.Scheme
}

func newDecisionRig(t *testing.T, dl *worker.DecisionLogConfig) *decisionRig {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	r := &decisionRig{nc: natstest.Connect(t, s), metrics: newReplyMetrics(t)}
	r.scheme, _ = subjects.NewScheme(subjects.DefaultPrefix)
	var err error
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	allow := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Success}, nil
	}
	deny := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA", ErrorMessage: "no more disks"}, nil
	}
	hang := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, ctx.Err()
	}
	slow := fn("hang", "PRE_CREATE", []string{"NETWORK"}, 0, hang)
	slow.Timeout = time.Millisecond
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: r.metrics, Instance: "w-1", DecisionLog: dl},
		fn("allow", "PRE_CREATE", []string{"SERVER"}, 0, allow),
		fn("deny", "PRE_CREATE", []string{"DISK"}, 0, deny),
		slow)
	return r
}

// decisionKinds are the kinds of request the test mixes, by i%4: the
// option, the body, and the decision expected.
func decisionRequest(i int) (option string, body []byte, allowed bool, code string) {
	id := "ev-" + strconv.Itoa(i)
	switch i % 4 {
	case 0:
		return "SERVER", []byte(`{"id":"` + id + `","input":{"n":` + strconv.Itoa(i) + `}}`), true, ""
	case 1:
		return "DISK", []byte(`{"id":"` + id + `","input":{"n":` + strconv.Itoa(i) + `}}`), false, "QUOTA"
	case 2:
		return "NETWORK", []byte(`{"id":"` + id + `","input":{}}`), false, event.CodeTimeout
	}
	return "SERVER", []byte(`not json ` + id), false, event.CodeBadRequest
}

// ask sends request i and returns its decision.
func (r *decisionRig) ask(t *testing.T, i int) *event.Decision {
	t.Helper()
	option, body, _, _ := decisionRequest(i)
	m := nats.NewMsg("trigger.PRE_CREATE." + option)
	m.Data = body
	m.Header.Set(subjects.HeaderMsgID, "ev-"+strconv.Itoa(i))
	m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	reply, err := r.nc.RequestMsg(m, replyDeadline)
	if err != nil {
		t.Fatalf("request %d: %v", i, err)
	}
	var d event.Decision
	if err := json.Unmarshal(reply.Data, &d); err != nil {
		t.Fatalf("decision %d: %v", i, err)
	}
	return &d
}

// askAll sends requests 0 to n-1 and checks each decision.
func (r *decisionRig) askAll(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		d := r.ask(t, i)
		_, _, allowed, code := decisionRequest(i)
		if d.Allowed != allowed || d.Code != code {
			t.Fatalf("decision %d = allowed %v code %q, want %v %q", i, d.Allowed, d.Code, allowed, code)
		}
	}
}

// records waits until the decision stream holds want records, and returns
// every record it holds.
func (r *decisionRig) records(t *testing.T, want int) []worker.DecisionRecord {
	t.Helper()
	var out []worker.DecisionRecord
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		out = r.readRecords(t)
		if len(out) < want {
			return fmt.Errorf("%d records, want %d", len(out), want)
		}
		return nil
	})
	return out
}

// readRecords reads every record of the decision stream: its messages hold
// one or more, as JSON lines.
func (r *decisionRig) readRecords(t *testing.T) []worker.DecisionRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, r.scheme.DecisionStream())
	if err != nil {
		return nil
	}
	var out []worker.DecisionRecord
	for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if want := "trigger.decisions.PRE_CREATE."; !strings.HasPrefix(m.Subject, want) {
			t.Errorf("message %d on %s, want %s<OPTION>", seq, m.Subject, want)
		}
		for line := range strings.Lines(string(m.Data)) {
			var rec worker.DecisionRecord
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("message %d: %v", seq, err)
			}
			if want := m.Subject[len("trigger.decisions."):]; rec.Subject != "trigger."+want {
				t.Errorf("record of %s in a message on %s", rec.Subject, m.Subject)
			}
			out = append(out, rec)
		}
	}
	return out
}

// TestDecisionLogRecordsEveryDecision: 1,000 PRE decisions of four kinds
// (allowed, denied, timed out, bad request) are each in the decision log
// exactly once, with the decision's fields, the worker, the caller's
// deadline and the input's hash.
func TestDecisionLogRecordsEveryDecision(t *testing.T) {
	r := newDecisionRig(t, &worker.DecisionLogConfig{})
	const n = 1000
	r.askAll(t, n)
	seen := map[string]int{}
	for _, rec := range r.records(t, n) {
		seen[rec.ID]++
		i, err := strconv.Atoi(rec.ID[len("ev-"):])
		if err != nil {
			t.Fatalf("record id %q", rec.ID)
		}
		option, body, allowed, code := decisionRequest(i)
		sum := sha256.Sum256(body)
		if rec.Allowed != allowed || rec.Code != code || rec.Subject != "trigger.PRE_CREATE."+option ||
			rec.Worker != "w-1" || rec.Deadline == nil || rec.InputSHA256 != hex.EncodeToString(sum[:]) || rec.Input != nil {
			t.Errorf("record %s = %+v, want allowed %v code %q on %s", rec.ID, rec, allowed, code, option)
		}
		if i%4 < 3 && (len(rec.Functions) != 1 || rec.Functions[0].Result == "") {
			t.Errorf("record %s functions = %+v, want the one that ran with its result", rec.ID, rec.Functions)
		}
	}
	for i := range n {
		if c := seen["ev-"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("ev-%d logged %d times, want once", i, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct records, want %d", len(seen), n)
	}
}

// TestDecisionLogIDWithoutMsgID: a request without Nats-Msg-Id (the Go
// SDK sends none on PRE) whose decision the worker makes before decoding
// the event (EXPIRED) is logged with the event's id all the same; one
// that does not decode, with none.
func TestDecisionLogIDWithoutMsgID(t *testing.T) {
	r := newDecisionRig(t, &worker.DecisionLogConfig{})
	for _, tt := range []struct {
		body string
		code string
	}{
		{`{"id":"ev-expired","input":{}}`, event.CodeExpired},
		{`not json`, event.CodeBadRequest},
	} {
		m := nats.NewMsg("trigger.PRE_CREATE.SERVER")
		m.Data = []byte(tt.body)
		m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10))
		if tt.code == event.CodeBadRequest {
			m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		}
		reply, err := r.nc.RequestMsg(m, replyDeadline)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := event.DecodeDecision(reply.Data); err != nil || d.Code != tt.code || d.ID != "" {
			t.Fatalf("decision %+v, %v; want %s without an id", d, err, tt.code)
		}
	}
	ids := map[string]string{}
	for _, rec := range r.records(t, 2) {
		ids[rec.Code] = rec.ID
	}
	if want := map[string]string{event.CodeExpired: "ev-expired", event.CodeBadRequest: ""}; !maps.Equal(ids, want) {
		t.Errorf("record ids by code %v, want %v", ids, want)
	}
}

// TestDecisionLogDeniedOnlyAndFullInput: denied_only keeps refusals only,
// and input full keeps the request's event.
func TestDecisionLogDeniedOnlyAndFullInput(t *testing.T) {
	r := newDecisionRig(t, &worker.DecisionLogConfig{DeniedOnly: true, Input: worker.InputFull})
	for i := range 8 {
		r.ask(t, i)
	}
	// Stop waiting once the 6 refusals are in: an allowed record, had one
	// been written, would come before the last of them.
	recs := r.records(t, 6)
	if len(recs) != 6 {
		t.Fatalf("%d records, want the 6 refusals", len(recs))
	}
	for _, rec := range recs {
		if rec.Allowed {
			t.Errorf("allowed decision %s logged with denied_only", rec.ID)
		}
		i, _ := strconv.Atoi(rec.ID[len("ev-"):])
		_, body, _, _ := decisionRequest(i)
		if i%4 != 3 && string(rec.Input) != string(body) {
			t.Errorf("record %s input = %s, want %s", rec.ID, rec.Input, body)
		}
	}
}

// TestDecisionLogUnavailable: with the decision stream deleted, decisions
// are answered as before and every record lost is counted.
func TestDecisionLogUnavailable(t *testing.T) {
	r := newDecisionRig(t, &worker.DecisionLogConfig{})
	r.ask(t, 0)
	r.records(t, 1)
	if err := r.js.DeleteStream(context.Background(), r.scheme.DecisionStream()); err != nil {
		t.Fatal(err)
	}
	const n = 40
	r.askAll(t, n)
	failures := r.metrics.DecisionLogFailures.WithLabelValues(worker.DecisionLogPublish)
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := testutil.ToFloat64(failures); got != n {
			return fmt.Errorf("trigger_decision_log_failures_total{reason=publish} = %v, want %d", got, n)
		}
		return nil
	})
}

// TestDecisionLogConfigChecked: New refuses a decision log whose input
// setting or allowed sample is not one.
func TestDecisionLogConfigChecked(t *testing.T) {
	nc := natstest.Connect(t, natstest.RunServer(t))
	for _, dl := range []worker.DecisionLogConfig{{Input: "some"}, {SampleAllowed: 2}, {SampleAllowed: -0.5}} {
		if _, err := worker.New(nc, worker.Config{DecisionLog: &dl}); err == nil {
			t.Errorf("New with decision log %+v: no error", dl)
		}
	}
}

// TestDecisionLogEventDeadline: the record's deadline is the one the worker
// kept: the event's deadline, or the earlier of it and Trigger-Deadline.
func TestDecisionLogEventDeadline(t *testing.T) {
	r := newDecisionRig(t, &worker.DecisionLogConfig{})
	soon := time.Now().Add(time.Minute).UnixMilli()
	later := strconv.FormatInt(soon+60_000, 10)
	for _, tt := range []struct {
		id, body, header string
	}{
		{"event-only", `"deadline":` + strconv.FormatInt(soon, 10), ""},
		{"event-earlier", `"deadline":` + strconv.FormatInt(soon, 10), later},
		{"header-earlier", `"deadline":` + later, strconv.FormatInt(soon, 10)},
	} {
		m := nats.NewMsg("trigger.PRE_CREATE.SERVER")
		m.Data = []byte(`{"id":"` + tt.id + `",` + tt.body + `,"input":{"n":0}}`)
		if tt.header != "" {
			m.Header.Set(subjects.HeaderDeadline, tt.header)
		}
		if _, err := r.nc.RequestMsg(m, replyDeadline); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range r.records(t, 3) {
		if rec.Deadline == nil || rec.Deadline.UnixMilli() != soon {
			t.Errorf("record %s: deadline %v, want %v", rec.ID, rec.Deadline, time.UnixMilli(soon).UTC())
		}
	}
}
