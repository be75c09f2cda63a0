package security_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// loopScripts: a PRE function that refuses, and a POST function that
// reports each event to sec.post and publishes a copy of its event (the
// loop the flag must break: the copy carries the worker's signed
// Trigger-Origin and is dropped).
const loopScripts = `
function register() return { "deny_create", "echo_create" } end

function deny_create(p)
  if p == nil then
    return { ref = "deny_create", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  return { exitState = "FAILED", errorCode = "REFUSED", errorMessage = "refused by the trigger" }
end

function echo_create(p)
  if p == nil then
    return { ref = "echo_create", triggerType = "POST_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  local reply, err = trigger.request("sec.post", { id = p.id }, 2000)
  if reply == nil then error("recorder: " .. tostring(err)) end
  trigger.publish("trigger.POST_CREATE.SERVER", { input = { echo = p.id } })
  return { exitState = "SUCCESS" }
end
`

// scrapeMetrics reads a /metrics endpoint.
func scrapeMetrics(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// metricSum adds the values of the counter series of family name whose
// labels include want.
func metricSum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var total float64
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			ok = ok && found
		}
		if ok {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// loopCounters reads, from the worker's /metrics at base, the Trigger-Origin
// values rejected (all types) and the POST_CREATE events dropped for their
// loop flag.
func loopCounters(t testing.TB, base string) (rejected, dropped float64) {
	t.Helper()
	mfs := scrapeMetrics(t, base)
	return metricSum(mfs, "trigger_origin_rejected_total", nil),
		metricSum(mfs, "trigger_events_dropped_total", map[string]string{"trigger_type": "POST_CREATE", "reason": "trigger_originated"})
}

// TestLoopKeyEndToEnd runs the trigger-worker binary with the fleet key
// given by TRIGGER_LOOP_KEY and checks that the loop flag cannot be forged
// to silence triggers: a Trigger-Origin without a signature, signed with
// another key, tampered with or expired is counted in
// trigger_origin_rejected_total and ignored (the PRE function refuses, the
// POST function runs); one the fleet signed is honoured (TRIGGER_ORIGINATED,
// the POST dropped). The worker's own stamp verifies: the copy of its event
// a function publishes is dropped, so the loop runs once. The key appears
// nowhere in the worker's debug log or metrics.
func TestLoopKeyEndToEnd(t *testing.T) {
	t.Parallel()
	const key = "fleet-loop-key-5d2e9a0c77"
	s := natstest.RunServer(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "loop.lua", loopScripts)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{"log.level": "debug"})
	p := startProcess(t, []string{"TRIGGER_LOOP_KEY=" + key}, "run", "-c", cfg)
	base := p.WaitReady(t)

	nc := natstest.Connect(t, s)
	var mu sync.Mutex
	ran := map[string]int{}
	if _, err := nc.Subscribe("sec.post", func(m *nats.Msg) {
		var v struct{ ID string }
		_ = json.Unmarshal(m.Data, &v)
		mu.Lock()
		ran[v.ID]++
		mu.Unlock()
		_ = m.Respond([]byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	runs := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return ran[id]
	}
	counters := func() (rejected, dropped float64) { return loopCounters(t, base) }

	id := "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
	signer := worker.NewOrigin([]byte(key), time.Minute)
	otherKey := worker.NewOrigin([]byte("another-key"), time.Minute)
	valid := func(subject string, data []byte) string { return signer.Stamp("some_function", id, subject, data) }

	// send asks a PRE decision and publishes a POST event with id postID,
	// each flagged with origin(its subject, its body) (nil: no flag), and
	// returns the decision.
	send := func(t *testing.T, postID string, origin func(subject string, data []byte) string) *event.Decision {
		t.Helper()
		req := nats.NewMsg("trigger.PRE_CREATE.SERVER")
		post := nats.NewMsg("trigger.POST_CREATE.SERVER")
		post.Data = []byte(`{"id":"` + postID + `"}`)
		if origin != nil {
			req.Header.Set(subjects.HeaderOrigin, origin(req.Subject, req.Data))
			post.Header.Set(subjects.HeaderOrigin, origin(post.Subject, post.Data))
		}
		reply, err := nc.RequestMsg(req, waitShort)
		if err != nil {
			t.Fatal(err)
		}
		d, err := event.DecodeDecision(reply.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishMsg(post); err != nil {
			t.Fatal(err)
		}
		return d
	}

	// Stamps for the PRE request and the POST event "post-expired" that
	// expire at once.
	short := worker.NewOrigin([]byte(key), time.Millisecond)
	stale := map[string]string{
		"trigger.PRE_CREATE.SERVER":  short.Stamp("some_function", id, "trigger.PRE_CREATE.SERVER", nil),
		"trigger.POST_CREATE.SERVER": short.Stamp("some_function", id, "trigger.POST_CREATE.SERVER", []byte(`{"id":"post-expired"}`)),
	}
	natstest.CheckFor(t, waitShort, time.Millisecond, func() error {
		if signer.Verify("trigger.PRE_CREATE.SERVER", nil, stale["trigger.PRE_CREATE.SERVER"]) == nil {
			return errors.New("the short-lived stamp has not expired yet")
		}
		return nil
	})

	t.Run("no flag: the triggers run once, the loop is broken", func(t *testing.T) {
		_, droppedBefore := counters()
		d := send(t, "post-plain", nil)
		if d.Allowed || d.Code != "REFUSED" {
			t.Errorf("decision = %+v, want the function's refusal", d)
		}
		// The function's copy of the event carries the worker's stamp,
		// which verifies: it is dropped, not run.
		natstest.CheckFor(t, waitShort, poll, func() error {
			if _, dropped := counters(); dropped != droppedBefore+1 {
				return fmt.Errorf("dropped{POST_CREATE,trigger_originated} = %v, want %v", dropped, droppedBefore+1)
			}
			return nil
		})
		if got := runs("post-plain"); got != 1 {
			t.Errorf("the POST function ran %d times for the event, want 1", got)
		}
		if rejected, _ := counters(); rejected != 0 {
			t.Errorf("trigger_origin_rejected_total = %v: the worker's own stamp did not verify", rejected)
		}
	})

	for _, tt := range []struct {
		name   string
		origin func(subject string, data []byte) string
	}{
		{"unsigned", func(string, []byte) string { return "some_function/" + id }},
		{"signed with another key", func(subject string, data []byte) string {
			return otherKey.Stamp("some_function", id, subject, data)
		}},
		{"tampered", func(subject string, data []byte) string {
			return strings.Replace(valid(subject, data), "some_function", "other_function", 1)
		}},
		{"expired", func(subject string, _ []byte) string { return stale[subject] }},
		{"garbage", func(string, []byte) string { return "////" }},
	} {
		t.Run("forged "+tt.name+": ignored and counted", func(t *testing.T) {
			rejectedBefore, _ := counters()
			postID := "post-" + strings.Fields(tt.name)[0]
			d := send(t, postID, tt.origin)
			if d.Allowed || d.Code != "REFUSED" {
				t.Errorf("decision = %+v, want the function's refusal (the flag is not honoured)", d)
			}
			natstest.CheckFor(t, waitShort, poll, func() error {
				if runs(postID) != 1 {
					return fmt.Errorf("the POST function has not run for %s", postID)
				}
				return nil
			})
			if rejected, _ := counters(); rejected != rejectedBefore+2 {
				t.Errorf("trigger_origin_rejected_total grew by %v, want 2 (PRE and POST)", rejected-rejectedBefore)
			}
		})
	}

	t.Run("signed by the fleet for the message: honoured", func(t *testing.T) {
		rejectedBefore, droppedBefore := counters()
		d := send(t, "post-valid", valid)
		if !d.Allowed || d.Code != event.CodeTriggerOriginated {
			t.Errorf("decision = %+v, want TRIGGER_ORIGINATED", d)
		}
		natstest.CheckFor(t, waitShort, poll, func() error {
			if _, dropped := counters(); dropped != droppedBefore+1 {
				return fmt.Errorf("dropped{POST_CREATE,trigger_originated} = %v, want %v", dropped, droppedBefore+1)
			}
			return nil
		})
		if got := runs("post-valid"); got != 0 {
			t.Errorf("the POST function ran %d times for an event the fleet flagged", got)
		}
		if rejected, _ := counters(); rejected != rejectedBefore {
			t.Errorf("trigger_origin_rejected_total grew by %v for a valid stamp", rejected-rejectedBefore)
		}
	})

	metrics, _, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	for where, out := range map[string]string{"log": p.Stderr() + p.Stdout(), "metrics": metrics} {
		if strings.Contains(out, key) {
			t.Errorf("the loop key appears in the worker's %s", where)
		}
	}
}

// TestCheckWarnsWithoutLoopKey: `trigger-worker check` warns when no loop
// key is set (a publisher could then silence triggers with a forged flag),
// and does not when TRIGGER_LOOP_KEY sets one, without printing it. The
// warning is not a problem: the exit code stays 0.
func TestCheckWarnsWithoutLoopKey(t *testing.T) {
	t.Parallel()
	const key = "check-loop-key-0a9f3e"
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	cfg := proctest.WriteFile(t, dir, "trigger-worker.yaml", fmt.Sprintf("scripts:\n  dir: %q\n", dir))
	const warning = "warning: loop.key is not set"

	code, stdout, stderr := run(t, nil, "check", "-c", cfg)
	if code != 0 {
		t.Errorf("check without a key: exit code %d, want 0:\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, warning) {
		t.Errorf("check without a key does not warn %q:\n%s", warning, stdout)
	}

	code, stdout, stderr = run(t, []string{"TRIGGER_LOOP_KEY=" + key}, "check", "-c", cfg)
	if code != 0 {
		t.Errorf("check with a key: exit code %d, want 0:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, warning) {
		t.Errorf("check warns although TRIGGER_LOOP_KEY is set:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, key) {
		t.Errorf("check prints the loop key:\n%s%s", stdout, stderr)
	}
}
