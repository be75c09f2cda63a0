package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// luaMatching reports whether some goroutine is inside a Lua string
// pattern matcher (ours or gopher-lua's).
func luaMatching() bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Contains(stacks, "handlers.(*luaMatch)") || strings.Contains(stacks, "gopher-lua/pm.")
}

// TestPreLuaRunawayPattern: a PRE function stuck in a backtracking string
// pattern (hours of work) is answered TIMEOUT at its deadline, counted in
// trigger_functions_in_flight while it runs, and stops: once the gauge is
// back to 0, no pattern matcher runs any more. The function's timeout (2 s)
// is long enough for a loaded machine to see it in flight; the waits are
// bounds, not speed claims.
func TestPreLuaRunawayPattern(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runaway.lua")
	src := `function register() return { "main" } end
function main(p)
  if p == nil then
    return { ref = "runaway", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  local x = string.find(string.rep("a", 40), string.rep("a*", 40) .. "b")
  return { exitState = "CONTINUE" }
end
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, err := lua.LoadScript(path, lua.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := fns[0].Handler
	t.Cleanup(func() { _ = h.Close() })

	s := natstest.RunServer(t)
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m}, worker.Function{
		Ref: "runaway", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Timeout: 2 * time.Second, Handler: h,
	})
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	type answer struct {
		d   *event.Decision
		err error
	}
	done := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", nil)
		done <- answer{d, err}
	}()
	natstest.CheckFor(t, time.Minute, time.Millisecond, func() error {
		if v := testutil.ToFloat64(m.FunctionsInFlight); v != 1 {
			return fmt.Errorf("%v functions in flight, want 1", v)
		}
		return nil
	})
	a := natstest.ChanRecv(t, done, time.Minute)
	if a.err != nil || a.d.Allowed || a.d.Code != event.CodeTimeout {
		t.Fatalf("Decide() = %+v, %v; want a TIMEOUT denial", a.d, a.err)
	}
	// The call stops after its deadline; until then it is in flight.
	const bound = 30 * time.Second
	deadline := time.Now().Add(bound)
	for {
		if v := testutil.ToFloat64(m.FunctionsInFlight); v == 0 {
			if luaMatching() {
				t.Fatal("trigger_functions_in_flight is 0 while the pattern still runs")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call still runs %v after the TIMEOUT decision", bound)
		}
		time.Sleep(time.Millisecond)
	}
}
