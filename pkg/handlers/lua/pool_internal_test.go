package lua

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestLuaTimedOutStateNotPooled: the state of a call that ran out of time is
// closed, never put back in the pool; the state of a call that ended in time
// is.
func TestLuaTimedOutStateNotPooled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.lua")
	src := `function register() return { "main" } end
function main(p)
  if p == nil then
    return { ref = "pool", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  if p.input.spin then while true do end end
  if p.input.late then local t = os.clock() while os.clock() - t < 0.3 do end end
  return { exitState = "CONTINUE" }
end
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, err := LoadScript(path, Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := fns[0].Handler
	t.Cleanup(func() { _ = h.Close() })
	ev := func(input string) *event.Event {
		return &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER", Input: json.RawMessage(input)}
	}
	if _, err := h.Handle(t.Context(), ev(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.pool); n != 1 {
		t.Fatalf("after a call in time: %d idle states, want 1", n)
	}
	for _, input := range []string{`{"spin":true}`, `{"late":true}`} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := h.Handle(ctx, ev(input))
		cancel()
		if input == `{"spin":true}` && !errors.Is(err, handlers.ErrTimeout) {
			t.Errorf("%s: error = %v, want a timeout", input, err)
		}
		if n := len(h.pool); n != 0 {
			t.Errorf("after a call that outlived its context (%s): %d idle states, want 0", input, n)
		}
		if _, err := h.Handle(t.Context(), ev(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
}
