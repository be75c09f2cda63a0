package handlers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
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

// TestTimeoutUnderCall: the first Timeout under a worker's call context
// uses the call's own storage, and answers as a deadline of its own would
// (the call, the deadline, the end); a second one under the same call gets
// storage of its own; TimeoutCall reports when the call ended and a call
// that outlived its deadline as a timeout.
func TestTimeoutUnderCall(t *testing.T) {
	cctx := WithCall(context.Background(), Call{Ref: "f", Attempt: 2})
	cc := cctx.(*callCtx)
	first := withLazyDeadline(cctx, time.Now().Add(time.Hour))
	second := withLazyDeadline(cctx, time.Now().Add(time.Hour))
	if first != &cc.lazy || second == &cc.lazy {
		t.Fatalf("first deadline in the call's storage: %v, second: %v; want the first only", first == &cc.lazy, second == &cc.lazy)
	}
	if c, ok := CallFrom(first); !ok || c.Ref != "f" || c.Attempt != 2 {
		t.Fatalf("CallFrom(deadline) = %+v, %v, want the call", c, ok)
	}
	if dl, ok := first.Deadline(); !ok || time.Until(dl) < 59*time.Minute {
		t.Fatalf("Deadline() = %v, %v", dl, ok)
	}
	first.release()
	second.release()
	if !errors.Is(first.Err(), context.Canceled) || !errors.Is(second.Err(), context.Canceled) || cctx.Err() != nil {
		t.Fatalf("after release: %v, %v, call %v; want both canceled, the call not", first.Err(), second.Err(), cctx.Err())
	}

	var seen context.Context
	h := Func(func(ctx context.Context, _ *event.Event) (Result, error) {
		seen = ctx
		<-ctx.Done()
		return Result{ExitState: Success}, nil
	})
	start := time.Now()
	res, end, err := TimeoutCall(WithCall(context.Background(), Call{Ref: "g"}), h, &event.Event{}, 20*time.Millisecond, start)
	if !errors.Is(err, ErrTimeout) || res.ExitState != "" || end.Before(start.Add(20*time.Millisecond)) {
		t.Fatalf("TimeoutCall = %+v, end after %v, %v; want a timeout, ended after the deadline", res, end.Sub(start), err)
	}
	if c, ok := CallFrom(seen); !ok || c.Ref != "g" {
		t.Fatalf("the function's context lost its call: %+v, %v", c, ok)
	}
	quick := Func(func(context.Context, *event.Event) (Result, error) { return Result{ExitState: Success}, nil })
	if res, end, err := TimeoutCall(context.Background(), quick, &event.Event{}, time.Hour, time.Now()); err != nil || res.ExitState != Success || end.IsZero() {
		t.Fatalf("TimeoutCall(quick) = %+v, %v, %v", res, end, err)
	}
}

// TestWithLazyDeadline: the exported form ends at its deadline, with Done
// for a waiter, and release cancels it.
func TestWithLazyDeadline(t *testing.T) {
	ctx, release := WithLazyDeadline(context.Background(), time.Now().Add(10*time.Millisecond))
	defer release()
	if dl, ok := ctx.Deadline(); !ok || dl.IsZero() {
		t.Fatalf("Deadline() = %v, %v", dl, ok)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not ended at its deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", ctx.Err())
	}
	live, stop := WithLazyDeadline(context.Background(), time.Now().Add(time.Hour))
	if live.Err() != nil {
		t.Fatalf("Err() before the deadline = %v", live.Err())
	}
	stop()
	if !errors.Is(live.Err(), context.Canceled) {
		t.Fatalf("Err() after release = %v, want Canceled", live.Err())
	}
}
