package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
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

// WaitSettled waits until the consumer of stream has no message pending or
// unacknowledged and the stream holds none (it retains by interest or as a
// work queue), so that the server delivers nothing more; it fails the test
// if that has not happened within total.
func WaitSettled(t testing.TB, js jetstream.JetStream, stream, consumer string, total time.Duration) {
	t.Helper()
	CheckFor(t, total, 20*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumAckPending != 0 || ci.NumPending != 0 {
			return fmt.Errorf("consumer %s: %d unacked, %d pending", consumer, ci.NumAckPending, ci.NumPending)
		}
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		si, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if si.State.Msgs != 0 {
			return fmt.Errorf("stream %s holds %d messages", stream, si.State.Msgs)
		}
		return nil
	})
}

// WaitInterest waits until every server of servers has a subscriber to
// subject in the global account within its own cluster (a client of its
// own, or of a server it has a route to; interest across gateways is not
// counted), and fails the test if that has not happened within total. In a
// supercluster a server prefers those subscribers to the other clusters'
// members of a queue group, so after it a request from any of servers is
// answered in their cluster.
func WaitInterest(t testing.TB, servers []*server.Server, subject string, total time.Duration) {
	t.Helper()
	waitInterest(t, servers, subject, true, total)
}

// WaitNoInterest waits until no server of servers has a subscriber to
// subject in the global account within its own cluster, as [WaitInterest]
// counts them, and fails the test if that has not happened within total.
// After the subscribers of a cluster have gone, a request then leaves that
// cluster for any other that has a subscriber, rather than go to a server
// that has none any more.
func WaitNoInterest(t testing.TB, servers []*server.Server, subject string, total time.Duration) {
	t.Helper()
	waitInterest(t, servers, subject, false, total)
}

func waitInterest(t testing.TB, servers []*server.Server, subject string, want bool, total time.Duration) {
	t.Helper()
	CheckFor(t, total, 20*time.Millisecond, func() error {
		for _, s := range servers {
			acc, err := s.LookupAccount(GlobalAccount)
			if err != nil {
				return fmt.Errorf("server %s: %w", s.Name(), err)
			}
			switch n := acc.Interest(subject); {
			case want && n == 0:
				return fmt.Errorf("server %s has no subscriber to %s in its cluster", s.Name(), subject)
			case !want && n > 0:
				return fmt.Errorf("server %s still has %d subscribers to %s in its cluster", s.Name(), n, subject)
			}
		}
		return nil
	})
}
