package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// resultScript is an FDL script whose entry point typo returns body.
const resultScript = `function register() return { "typo" } end
function typo(p)
  if p == nil then
    return { ref = "typo", triggerType = "PRE_CREATE", triggerOptions = { "ANY" }, api = "TRIGGER" }
  end
  %s
end
`

// resultLua loads a Lua function that runs body.
func resultLua(t *testing.T, body string) handlers.Handler {
	t.Helper()
	path := filepath.Join(t.TempDir(), "typo.lua")
	if err := os.WriteFile(path, fmt.Appendf(nil, resultScript, body), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, err := lua.LoadScript(path, lua.Options{})
	if err != nil || len(fns) != 1 {
		t.Fatalf("LoadScript: %d functions, %v", len(fns), err)
	}
	t.Cleanup(func() { _ = fns[0].Handler.Close() })
	return fns[0].Handler
}

// TestPreBadResultRefuses: a result the worker cannot read refuses the
// action with HANDLER_ERROR naming the key, even for a fail-open function,
// and a function after it does not run.
func TestPreBadResultRefuses(t *testing.T) {
	s := natstest.RunServer(t)
	goTypo := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: "failed"}, nil
	})
	after := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Success}, nil
	})
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		worker.Function{Ref: "lua_typo", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, FailurePolicy: worker.FailOpen,
			Handler: resultLua(t, `return { exitstate = "FAILED", errorCode = "QUOTA_EXCEEDED" }`)},
		worker.Function{Ref: "lua_proxy", TriggerType: "PRE_CREATE", Options: []string{"DISK"}, FailurePolicy: worker.FailOpen,
			Handler: resultLua(t, `return setmetatable({}, { __index = { exitState = "FAILED" } })`)},
		worker.Function{Ref: "go_typo", TriggerType: "PRE_CREATE", Options: []string{"NETWORK"}, FailurePolicy: worker.FailOpen, Handler: goTypo},
		worker.Function{Ref: "after", TriggerType: "PRE_CREATE", Options: []string{"ANY"}, Priority: 10, Handler: after},
	)
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		option, ref, key string
	}{
		{"SERVER", "lua_typo", `"exitstate"`},
		{"DISK", "lua_proxy", "metatable"},
		{"NETWORK", "go_typo", `"failed"`},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			d, err := c.Decide(t.Context(), "PRE_CREATE", tt.option, &event.Event{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Code != event.CodeHandlerError || d.Function != tt.ref || !strings.Contains(d.Message, tt.key) {
				t.Errorf("Decide(PRE_CREATE.%s) = allowed %v, code %q, function %q, message %q; want refused with %s by %s naming %s",
					tt.option, d.Allowed, d.Code, d.Function, d.Message, event.CodeHandlerError, tt.ref, tt.key)
			}
			if len(d.Functions) != 1 || d.Functions[0].Result != event.OutcomeError {
				t.Errorf("Decide(PRE_CREATE.%s).Functions = %+v, want only %s, an error", tt.option, d.Functions, tt.ref)
			}
		})
	}
}

// TestPostBadResultIsAnError: a POST function's result cannot refuse
// anything, but an unreadable one is counted as an error, not a success.
func TestPostBadResultIsAnError(t *testing.T) {
	s := natstest.RunServer(t)
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m},
		worker.Function{Ref: "post_typo", TriggerType: "POST_CREATE", Options: []string{"SERVER"},
			Handler: resultLua(t, `return { exitstate = "SUCCESS" }`)})
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(t.Context(), "POST_CREATE", "SERVER", &event.Event{}); err != nil {
		t.Fatal(err)
	}
	errs := m.FunctionInvocations.WithLabelValues("post_typo", "POST_CREATE", worker.ResultError)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(errs); n != 1 {
			return fmt.Errorf("post_typo error invocations = %v, want 1", n)
		}
		return nil
	})
	for _, r := range []string{worker.ResultSuccess, worker.ResultContinue} {
		if n := testutil.ToFloat64(m.FunctionInvocations.WithLabelValues("post_typo", "POST_CREATE", r)); n != 0 {
			t.Errorf("post_typo %s invocations = %v, want 0", r, n)
		}
	}
}
