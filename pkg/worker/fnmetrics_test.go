package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/pkg/event"
)

// TestFunctionSeriesOnFirstUse: a function's series appear with its first
// call of each result, and counting a seen result allocates nothing.
func TestFunctionSeriesOnFirstUse(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fns := make([]*fnMetrics, 1000)
	for i := range fns {
		fns[i] = m.function("fn_"+strconv.Itoa(i), "PRE_CREATE")
	}
	if n := testutil.CollectAndCount(m.FunctionInvocations) + testutil.CollectAndCount(m.FunctionDuration); n != 0 {
		t.Fatalf("%d series for 1000 functions never called, want 0", n)
	}
	f := fns[0]
	f.countResult(event.OutcomeContinue)
	f.observe(time.Millisecond)
	f.countResult(event.OutcomeContinue)
	if n := testutil.CollectAndCount(m.FunctionInvocations); n != 1 {
		t.Errorf("%d invocation series after one function's calls with one result, want 1", n)
	}
	if v := testutil.ToFloat64(m.FunctionInvocations.WithLabelValues(f.ref, "PRE_CREATE", ResultContinue)); v != 2 {
		t.Errorf("continue count = %v, want 2", v)
	}
	if n := testutil.CollectAndCount(m.FunctionDuration); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
	if a := testing.AllocsPerRun(100, func() {
		f.countResult(event.OutcomeContinue)
		f.observe(time.Millisecond)
	}); a != 0 {
		t.Errorf("counting a call allocates %v times, want 0", a)
	}
}
