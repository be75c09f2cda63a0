package lua_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// TestLuaExampleScripts loads the example scripts the default config runs
// and checks that each does what its comment says.
func TestLuaExampleScripts(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "config", "scripts")
	fns, err := lua.LoadScripts(dir, lua.Options{})
	if err != nil {
		t.Fatalf("LoadScripts(%s) error = %v", dir, err)
	}
	luaCloseAll(t, fns)
	byRef := map[string]lua.ScriptFunction{}
	var got []string
	for _, f := range fns {
		byRef[f.Ref] = f
		got = append(got, fmt.Sprintf("%s %s %v %d %v", f.Ref, f.TriggerType, f.TriggerOptions, f.Priority, f.Schedule))
	}
	want := []string{
		"default_ram PRE_CREATE [SERVER] 100 map[]",
		"job_failed_alert POST_JOB_STATE_CHANGE [FAILED] 0 map[]",
		"metadata_managed PRE_SERVER_METADATA_UPDATE [ANY] -8000 map[]",
		"nightly_sweep SCHEDULED [ANY] 0 map[frequency:map[MINUTE:5]]",
		"quota_max_cpu PRE_CREATE [SERVER] 0 map[]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadScripts(%s) =\n%v\nwant\n%v", dir, got, want)
	}
	if byRef["quota_max_cpu"].Priority >= byRef["default_ram"].Priority {
		t.Error("default_ram must run after quota_max_cpu")
	}

	t.Run("quota", func(t *testing.T) {
		h := byRef["quota_max_cpu"].Handler
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceName":"big","cpu":64}`))
		want := handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "servers are limited to 16 CPUs (asked for 64)"}
		if err != nil || !reflect.DeepEqual(res, want) {
			t.Errorf("quota(64 CPUs) = %+v, %v; want %+v", res, err, want)
		}
		for _, input := range []string{`{"cpu":2}`, `{"cpu":16}`, `{"resourceName":"no cpu"}`, ``} {
			res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(input))
			if err != nil || res.State() != handlers.Continue || res.Input != nil {
				t.Errorf("quota(%s) = %+v, %v; want CONTINUE", input, res, err)
			}
		}
	})

	t.Run("default_ram", func(t *testing.T) {
		h := byRef["default_ram"].Handler
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceName":"web-1","cpu":2}`))
		if err != nil || res.State() != handlers.Success || string(res.Input) != `{"resourceName":"web-1","cpu":2,"ram":2048}` {
			t.Errorf("default_ram(no ram) = %+v (%s), %v; want SUCCESS with ram 2048", res, res.Input, err)
		}
		res, err = h.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceName":"web-1","ram":8192}`))
		if err != nil || res.State() != handlers.Continue || res.Input != nil {
			t.Errorf("default_ram(ram 8192) = %+v, %v; want CONTINUE, unchanged", res, err)
		}
	})

	t.Run("job_failed_alert", func(t *testing.T) {
		h := byRef["job_failed_alert"].Handler
		bus := &luaBus{}
		ev := luaEvent(`{"resourceUUID":"j-1","jobType":"START_SERVER","status":"FAILED","itemType":"SERVER",` +
			`"itemUUID":"s-1","itemName":"web-1","customerUUID":"c-1","errorCode":"NO_CAPACITY","info":null}`)
		ev.TriggerType, ev.TriggerOption = "POST_JOB_STATE_CHANGE", "FAILED"
		res, err := h.Handle(luaCtx(t, bus, nil), ev)
		if err != nil || res.State() != handlers.Success {
			t.Fatalf("job_failed_alert = %+v, %v; want SUCCESS", res, err)
		}
		msgs := bus.messages()
		if len(msgs) != 1 || msgs[0].kind != "publish" || msgs[0].subject != "alerts.job.failed" {
			t.Fatalf("bus got %v, want one publish on alerts.job.failed", msgs)
		}
		var alert map[string]any
		if err := json.Unmarshal([]byte(msgs[0].data), &alert); err != nil {
			t.Fatal(err)
		}
		wantAlert := map[string]any{
			"event": ev.ID, "time": float64(ev.TimeStamp), "job": "j-1", "jobType": "START_SERVER", "itemType": "SERVER",
			"itemUUID": "s-1", "itemName": "web-1", "customer": "c-1", "errorCode": "NO_CAPACITY", "info": nil,
		}
		if !reflect.DeepEqual(alert, wantAlert) {
			t.Errorf("alert = %v\nwant %v", alert, wantAlert)
		}
		// Without a bus the alert cannot go: an error, so that the event is
		// delivered again.
		if _, err := h.Handle(luaCtx(t, nil, nil), ev); err == nil {
			t.Error("job_failed_alert without a bus: error = nil")
		}
	})

	t.Run("metadata", func(t *testing.T) {
		h := byRef["metadata_managed"].Handler
		ev := luaEvent(`[{"resourceUUID":"s-1","resourceName":"web-1"},{"CONFIG":{"meta":{"server":{}}}}]`)
		ev.TriggerType, ev.TriggerOption = "PRE_SERVER_METADATA_UPDATE", "ANY"
		res, err := h.Handle(luaCtx(t, nil, nil), ev)
		want := `[{"resourceUUID":"s-1","resourceName":"web-1"},{"CONFIG":{"meta":{"server":{}}},` +
			`"triggerbus":{"managed":true,"server":"s-1","updated":1764420000000}}]`
		if err != nil || res.State() != handlers.Success || string(res.Input) != want {
			t.Errorf("metadata = %+v (%s), %v; want SUCCESS with %s", res, res.Input, err, want)
		}
		ev.Input = json.RawMessage(`[{"resourceUUID":"s-1"},"<CONFIG/>"]`)
		res, err = h.Handle(luaCtx(t, nil, nil), ev)
		if err != nil || res.State() != handlers.Continue || res.Input != nil {
			t.Errorf("metadata(XML) = %+v, %v; want CONTINUE, unchanged", res, err)
		}
	})

	t.Run("nightly_sweep", func(t *testing.T) {
		h := byRef["nightly_sweep"].Handler
		ev := luaEvent(`[1764453600000,300000,1764453600042]`)
		ev.TriggerType, ev.TriggerOption = "SCHEDULED", "ANY"
		logs := &luaLogs{}
		res, err := h.Handle(luaCtx(t, nil, logs), ev)
		if err != nil || res.State() != handlers.Success || res.Input != nil {
			t.Fatalf("nightly_sweep = %+v, %v; want SUCCESS", res, err)
		}
		recs := logs.all()
		if len(recs) != 1 {
			t.Fatalf("nightly_sweep logged %d records, want 1", len(recs))
		}
		attrs := luaAttrs(recs[0])
		if recs[0].Message != "sweep" || attrs["scheduled"] != "2025-11-29T22:00:00Z" || attrs["scheduledMs"] != "1764453600000" || attrs["frequencyMs"] != "300000" {
			t.Errorf("nightly_sweep logged %q %v", recs[0].Message, attrs)
		}
	})
}
