package handlers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is the context of [Timeout]: a deadline whose timer starts
// only when something asks for the context's Done channel (a kind that
// waits on it, a context derived from it, context.AfterFunc). A function
// that never looks at its context (a Go no-op) costs no timer; its Err
// still reports the deadline once it has passed, which is all Timeout asks
// after the call.
//
// Once started, it is a context.WithDeadline of the parent, and answers
// everything through it, so contexts derived from it are tied to that
// context's cancellation as usual (no goroutine of their own).
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex // orders the start against release
	started  atomic.Pointer[context.Context]
	cancel   context.CancelFunc
	released bool
}

var _ context.Context = (*lazyDeadline)(nil)

// WithLazyDeadline returns a context of parent that ends at deadline, as
// context.WithDeadline's does, except that its timer starts only when
// something waits on it (its Done channel, a context derived from it,
// context.AfterFunc): a call that never does costs no timer, and its Err
// still reports the deadline once it has passed. release is its
// context.CancelFunc. Timeout gives each call such a context.
func WithLazyDeadline(parent context.Context, deadline time.Time) (ctx context.Context, release context.CancelFunc) {
	l := &lazyDeadline{parent: parent, deadline: deadline}
	return l, l.release
}

// withLazyDeadline returns a context of parent that ends at deadline; its
// release method is its context.CancelFunc.
func withLazyDeadline(parent context.Context, deadline time.Time) *lazyDeadline {
	if cc, ok := parent.(*callCtx); ok && cc.lazyTaken.CompareAndSwap(false, true) {
		// The call's own storage, used once: no allocation.
		cc.lazy.parent, cc.lazy.deadline = parent, deadline
		return &cc.lazy
	}
	return &lazyDeadline{parent: parent, deadline: deadline}
}

// start returns the context.WithDeadline behind c, creating it first.
func (c *lazyDeadline) start() context.Context {
	if p := c.started.Load(); p != nil {
		return *p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.started.Load(); p != nil {
		return *p
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if c.released {
		cancel() // released before it was started: canceled, as a released context is
	}
	c.cancel = cancel
	c.started.Store(&ctx)
	return ctx
}

// release stops the timer, if it started, and cancels the context.
func (c *lazyDeadline) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *lazyDeadline) Done() <-chan struct{} { return c.start().Done() }

// Err is the started context's error; before it started, nil until the
// parent ends or the deadline passes (then it starts, to say which).
func (c *lazyDeadline) Err() error {
	if p := c.started.Load(); p != nil {
		return (*p).Err()
	}
	return c.errAt(time.Now())
}

// errAt is Err with now as the time, read by the caller.
func (c *lazyDeadline) errAt(now time.Time) error {
	if p := c.started.Load(); p != nil {
		return (*p).Err()
	}
	c.mu.Lock()
	released := c.released
	c.mu.Unlock()
	if released || c.parent.Err() != nil || !now.Before(c.deadline) {
		return c.start().Err()
	}
	return nil
}

func (c *lazyDeadline) Value(key any) any {
	if p := c.started.Load(); p != nil {
		return (*p).Value(key)
	}
	return c.parent.Value(key)
}
