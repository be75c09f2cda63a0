package worker

import (
	"testing"
	"time"
)

// SetInlineBound sets how long a function's recent calls may take for its
// durable events to run inline, until the end of t (call it before the
// worker starts): a bound far above a fast call keeps a test's fast
// function inline on a busy machine.
func SetInlineBound(t testing.TB, d time.Duration) {
	old := inlineBound
	inlineBound = d
	t.Cleanup(func() { inlineBound = old })
}

func TestCallPace(t *testing.T) {
	var p callPace
	for i := range inlineMinCalls {
		if p.fast() {
			t.Fatalf("fast after %d calls, want not before %d", i, inlineMinCalls)
		}
		p.note(time.Microsecond)
	}
	if !p.fast() {
		t.Fatalf("not fast after %d calls of 1µs", inlineMinCalls)
	}
	p.note(inlineBound)
	if p.fast() {
		t.Fatal("fast after a call of inlineBound")
	}
	n := 0
	for ; !p.fast(); n++ {
		p.note(time.Microsecond)
	}
	if n == 0 || n > 10 {
		t.Errorf("fast again after %d fast calls, want a few", n)
	}
}
