package handlers

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLazyDeadlineNoTimerUntilDone: the deadline starts no timer while
// nothing waits on it, yet Err reports it once it has passed.
func TestLazyDeadlineNoTimerUntilDone(t *testing.T) {
	ctx := withLazyDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer ctx.release()
	if ctx.started.Load() != nil {
		t.Fatal("started before anything asked")
	}
	if dl, ok := ctx.Deadline(); !ok || dl.IsZero() || ctx.started.Load() != nil {
		t.Fatalf("Deadline() = %v, %v, or it started the timer", dl, ok)
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() after the deadline = %v, want DeadlineExceeded", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed after the deadline")
	}

	live := withLazyDeadline(context.Background(), time.Now().Add(time.Hour))
	if err := live.Err(); err != nil || live.started.Load() != nil {
		t.Fatalf("Err() before the deadline = %v (started %v), want nil and no timer", err, live.started.Load() != nil)
	}
	live.release()
	if err := live.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() after release = %v, want Canceled", err)
	}
}

// TestLazyDeadlineEnds: Done closes at the deadline, contexts derived from
// it end with it, and the parent's cancellation reaches it.
func TestLazyDeadlineEnds(t *testing.T) {
	ctx := withLazyDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer ctx.release()
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context not ended by the deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, child %v, want DeadlineExceeded", ctx.Err(), child.Err())
	}

	parent, stop := context.WithCancel(context.Background())
	ctx2 := withLazyDeadline(parent, time.Now().Add(time.Hour))
	defer ctx2.release()
	stop()
	if err := ctx2.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() after the parent's cancel = %v, want Canceled", err)
	}
	<-ctx2.Done()

	type key struct{}
	parent3 := context.WithValue(context.Background(), key{}, "v")
	ctx3 := withLazyDeadline(parent3, time.Now().Add(time.Hour))
	defer ctx3.release()
	if ctx3.Value(key{}) != "v" {
		t.Fatal("value of the parent lost before the start")
	}
	ctx3.Done()
	if ctx3.Value(key{}) != "v" {
		t.Fatal("value of the parent lost after the start")
	}
}
