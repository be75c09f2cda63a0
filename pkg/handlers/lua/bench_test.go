package lua_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// luaBenchScript is the function of cmd/trigger-bench's PRE Lua scenario: it
// reads p.input.cpu and returns CONTINUE.
const luaBenchScript = `function register()
  return {"bench_quota"}
end

function bench_quota(p)
  if p == nil then
    return {ref = "bench_quota", triggerType = "PRE_CREATE", triggerOptions = {"SERVER"}, api = "TRIGGER", version = 1}
  end
  local cpu = p.input.cpu
  if cpu ~= nil and cpu > 1024 then
    return {exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs"}
  end
  return {exitState = "CONTINUE"}
end
`

// luaBenchEvent is a realistic PRE_CREATE SERVER event, as the worker hands
// it to a function.
func luaBenchEvent() *event.Event {
	return &event.Event{
		ID:            "01JDQ7Z6W3S6K4V0Q5H3YB3M8C",
		TriggerType:   "PRE_CREATE",
		TriggerOption: "SERVER",
		TimeStamp:     1764420000000,
		BEUUID:        "b1c6e2d4",
		Customer:      json.RawMessage(`{"resourceUUID":"c2d3e4f5","resourceName":"Acme","billingEntityUUID":"b1c6e2d4"}`),
		User:          json.RawMessage(`{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"}`),
		Input:         json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192}`),
	}
}

// BenchmarkLuaCall is one call of a small Lua trigger function, from the
// event to the Result; compare with BenchmarkGoFuncCall.
func BenchmarkLuaCall(b *testing.B) {
	benchHandle(b, loadBenchScript(b))
}

// BenchmarkLuaCallDeadline is BenchmarkLuaCall under a deadline, as the
// worker calls a PRE function: each call gets a lazy deadline of its own.
func BenchmarkLuaCallDeadline(b *testing.B) {
	h := loadBenchScript(b)
	ev := luaBenchEvent()
	b.ReportAllocs()
	for b.Loop() {
		ctx, release := handlers.WithLazyDeadline(context.Background(), time.Now().Add(5*time.Second))
		res, err := h.Handle(ctx, ev)
		release()
		if err != nil {
			b.Fatal(err)
		}
		if res.State() != handlers.Continue {
			b.Fatalf("result %+v, want CONTINUE", res)
		}
	}
}

// loadBenchScript loads luaBenchScript and returns its function, closed
// when b ends.
func loadBenchScript(b *testing.B) handlers.Handler {
	path := filepath.Join(b.TempDir(), "bench.lua")
	if err := os.WriteFile(path, []byte(luaBenchScript), 0o600); err != nil {
		b.Fatal(err)
	}
	sfs, err := lua.LoadScript(path, lua.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if len(sfs) != 1 {
		b.Fatalf("LoadScript: %d functions, want 1", len(sfs))
	}
	h := sfs[0].Handler
	b.Cleanup(func() { _ = h.Close() })
	return h
}

// BenchmarkGoFuncCall is BenchmarkLuaCall's baseline: a no-op Go function.
func BenchmarkGoFuncCall(b *testing.B) {
	benchHandle(b, handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Continue}, nil
	}))
}

func benchHandle(b *testing.B, h handlers.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := luaBenchEvent()
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.Handle(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		if res.State() != handlers.Continue {
			b.Fatalf("result %+v, want CONTINUE", res)
		}
	}
}
