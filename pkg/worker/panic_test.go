package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestPanicIsAnErrorWithStack: a function that panics refuses its PRE
// request with HANDLER_ERROR, is counted as an error, and its failure is
// logged with the stack of the panic.
func TestPanicIsAnErrorWithStack(t *testing.T) {
	s := natstest.RunServer(t)
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs proctest.SyncBuffer
	boom := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		panic("boom")
	})
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m, Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		worker.Function{Ref: "boom", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: boom})
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Decide(t.Context(), "PRE_CREATE", "SERVER", &event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != event.CodeHandlerError || d.Function != "boom" || !strings.Contains(d.Message, "panic: boom") {
		t.Errorf("Decide() = allowed %v, code %q, function %q, message %q; want refused with %s by boom, a panic",
			d.Allowed, d.Code, d.Function, d.Message, event.CodeHandlerError)
	}
	if got := testutil.ToFloat64(m.FunctionInvocations.WithLabelValues("boom", "PRE_CREATE", worker.ResultError)); got != 1 {
		t.Errorf("error calls of boom = %v, want 1", got)
	}
	if l := logs.String(); !strings.Contains(l, `"stack":`) || !strings.Contains(l, "TestPanicIsAnErrorWithStack") {
		t.Errorf("log of the failure has no stack of the panic:\n%s", l)
	}
}
