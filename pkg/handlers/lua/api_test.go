package lua_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// luaBus is a handlers.Bus that records what it is sent and answers
// requests with reply. It stands in for the worker's Bus, which is tested
// against a real NATS server in pkg/worker.
type luaBus struct {
	mu    sync.Mutex
	sent  []luaMsg
	reply func(subject string, data []byte) ([]byte, error)
	err   error // returned by Publish
}

type luaMsg struct {
	kind, subject, data, origin string
	timeout                     time.Duration
}

func (b *luaBus) Publish(ctx context.Context, subject string, data []byte) error {
	origin, _ := event.OriginFrom(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, luaMsg{kind: "publish", subject: subject, data: string(data), origin: origin})
	return b.err
}

func (b *luaBus) Request(ctx context.Context, subject string, data []byte, timeout time.Duration) ([]byte, error) {
	origin, _ := event.OriginFrom(ctx)
	b.mu.Lock()
	b.sent = append(b.sent, luaMsg{kind: "request", subject: subject, data: string(data), origin: origin, timeout: timeout})
	b.mu.Unlock()
	return b.reply(subject, data)
}

func (b *luaBus) messages() []luaMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]luaMsg(nil), b.sent...)
}

func TestLuaPublishRequest(t *testing.T) {
	bus := &luaBus{reply: func(subject string, data []byte) ([]byte, error) {
		switch subject {
		case "fco.api.admin.getResource":
			return []byte(`{"resourceName":"web-1","cpu":4,"tags":[]}`), nil
		case "slow":
			return nil, errors.New("nats: timeout")
		case "empty":
			return nil, nil
		}
		return []byte("not json"), nil
	}}
	h := luaFunc(t, `
  local ok, err = trigger.publish("alerts.job.failed", { job = p.input.job, n = 1, none = trigger.null, list = trigger.json.array() })
  assert(ok == true and err == nil, "publish")
  local reply, err = trigger.request("fco.api.admin.getResource", { uuid = "s-1" }, 250)
  assert(reply and err == nil, err)
  local none, slow = trigger.request("slow", {})
  local none2, empty = trigger.request("empty", "x")
  local none3, bad = trigger.request("other", 1)
  return { exitState = "SUCCESS", errorCode = reply.resourceName .. ":" .. reply.cpu,
    errorMessage = table.concat({ tostring(none), slow, tostring(none2), empty, tostring(none3), bad:sub(1, 18) }, "|") }`)
	res, err := h.Handle(luaCtx(t, bus, nil), luaEvent(`{"job":"CREATE_SERVER"}`))
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	if res.ErrorCode != "web-1:4" {
		t.Errorf("reply read as %q, want %q", res.ErrorCode, "web-1:4")
	}
	if want := "nil|nats: timeout|nil|empty reply|nil|reply is not JSON:"; res.ErrorMessage != want {
		t.Errorf("failures = %q\nwant %q", res.ErrorMessage, want)
	}
	origin := "test/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
	want := []luaMsg{
		{kind: "publish", subject: "alerts.job.failed", data: `{"job":"CREATE_SERVER","n":1,"none":null,"list":[]}`, origin: origin},
		{kind: "request", subject: "fco.api.admin.getResource", data: `{"uuid":"s-1"}`, origin: origin, timeout: 250 * time.Millisecond},
		{kind: "request", subject: "slow", data: `{}`, origin: origin, timeout: 5 * time.Second},
		{kind: "request", subject: "empty", data: `"x"`, origin: origin, timeout: 5 * time.Second},
		{kind: "request", subject: "other", data: `1`, origin: origin, timeout: 5 * time.Second},
	}
	got := bus.messages()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bus got\n%v\nwant\n%v", got, want)
	}
}

func TestLuaPublishFailures(t *testing.T) {
	h := luaFunc(t, `
  local ok, err = trigger.publish("x", {})
  return { exitState = "SUCCESS", errorMessage = tostring(ok) .. "|" .. tostring(err) }`)
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no call", t.Context(), "nil|no bus: not running in a worker's call"},
		{"no bus", luaCtx(t, nil, nil), "nil|no bus: not running in a worker's call"},
		{"bus error", luaCtx(t, &luaBus{err: errors.New("nats: connection closed")}, nil), "nil|nats: connection closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.Handle(tt.ctx, luaEvent(`{}`))
			if err != nil || res.ErrorMessage != tt.want {
				t.Errorf("Handle() = %q, %v; want %q", res.ErrorMessage, err, tt.want)
			}
		})
	}
	// A value that is not JSON is the script's mistake: an error.
	h = luaFunc(t, `  trigger.publish("x", { f = print })`)
	if _, err := h.Handle(luaCtx(t, &luaBus{}, nil), luaEvent(`{}`)); err == nil {
		t.Error("publish of a function: error = nil")
	}
}

func TestLuaLog(t *testing.T) {
	h := luaFunc(t, `
  trigger.log("warn", "quota close", { cpu = p.input.cpu, ratio = 0.5, ok = true, tags = { "a" }, none = trigger.null })
  trigger.log("DEBUG", "details")
  trigger.log("nonsense", "as info")`)
	logs := &luaLogs{}
	if _, err := h.Handle(luaCtx(t, nil, logs), luaEvent(`{"cpu":12}`)); err != nil {
		t.Fatal(err)
	}
	recs := logs.all()
	if len(recs) != 3 {
		t.Fatalf("logged %d records, want 3", len(recs))
	}
	if recs[0].Level != slog.LevelWarn || recs[0].Message != "quota close" {
		t.Errorf("record 0 = %v %q", recs[0].Level, recs[0].Message)
	}
	if got, want := fmt.Sprint(luaAttrs(recs[0])), "map[cpu:12 none:<nil> ok:true ratio:0.5 tags:[a]]"; got != want {
		t.Errorf("record 0 attributes = %s, want %s", got, want)
	}
	if recs[1].Level != slog.LevelDebug || recs[2].Level != slog.LevelInfo {
		t.Errorf("levels = %v, %v; want DEBUG, INFO", recs[1].Level, recs[2].Level)
	}

	// Outside a worker's call the handler's own logger gets it, with the ref.
	fallback := &luaLogs{}
	h = luaFunc(t, `  trigger.log("info", "hello")`, lua.Options{Logger: slog.New(fallback)})
	if _, err := h.Handle(t.Context(), luaEvent(`{}`)); err != nil {
		t.Fatal(err)
	}
	recs = fallback.all()
	if len(recs) != 1 || recs[0].Message != "hello" || luaAttrs(recs[0])["function"] != "test" {
		t.Errorf("fallback logger got %v, want hello with function=test", recs)
	}
}

// TestLuaConcurrent calls one handler from many goroutines, more than its
// pool holds, each with its own input.
func TestLuaConcurrent(t *testing.T) {
	h := luaFunc(t, `
  assert(seen == nil, "a global of another call")
  seen = p.input.n
  local s = 0
  for i = 1, 100 do s = s + i end
  p.input.double = p.input.n * 2
  assert(seen == p.input.n)
  return { exitState = "SUCCESS", errorCode = tostring(s) }`, lua.Options{PoolSize: 2})
	const workers, calls = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				n := w*calls + i
				res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(fmt.Sprintf(`{"n":%d}`, n)))
				if err != nil {
					errs <- err
					continue
				}
				if want := fmt.Sprintf(`{"n":%d,"double":%d}`, n, 2*n); string(res.Input) != want || res.ErrorCode != "5050" {
					errs <- fmt.Errorf("call %d = %s %s, want %s", n, res.Input, res.ErrorCode, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLuaLogAttribution: outside a worker's call (which hands its own
// logger), every line a script writes, through print, trigger.log and the
// syslog helper, names the function, the event, its trigger type and option.
func TestLuaLogAttribution(t *testing.T) {
	logs := &luaLogs{}
	h := luaFunc(t, `
  print("printed")
  trigger.log("warn", "logged")
  syslog.syslog("LOG_ERR", "syslogged")
  return { exitState = "SUCCESS" }`, lua.Options{Logger: slog.New(logs)})
	ev := luaEvent(`{}`)
	if _, err := h.Handle(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	recs := logs.all()
	if len(recs) != 3 {
		t.Fatalf("logged %d records, want 3", len(recs))
	}
	want := map[string]string{
		handlers.LogFunction: "test", handlers.LogEventID: ev.ID,
		handlers.LogTriggerType: ev.TriggerType, handlers.LogOption: ev.TriggerOption,
	}
	for _, r := range recs {
		a := luaAttrs(r)
		for k, v := range want {
			if a[k] != v {
				t.Errorf("line %q: %s = %q, want %q", r.Message, k, a[k], v)
			}
		}
	}
}
