package natstest

import (
	"testing"
	"time"
)

// CheckFor calls f every sleep until it returns nil, and fails the test with
// f's last error if that has not happened within total. f is always called at
// least once, and once more at the deadline.
func CheckFor(t testing.TB, total, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("natstest: condition not met within %v: %v", total, err)
			return
		}
		time.Sleep(min(sleep, left))
	}
}

// ChanRecv returns the next value received from ch, and fails the test if
// none arrives within timeout. Like a plain receive, it returns the zero
// value at once if ch is closed, so it also waits for close-to-signal
// channels such as a ctx.Done().
func ChanRecv[T any](t testing.TB, ch <-chan T, timeout time.Duration) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("natstest: nothing received from channel within %v", timeout)
	}
	var zero T
	return zero
}
