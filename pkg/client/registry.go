package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Backoff between attempts to (re)establish the registry watch.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 10 * time.Second
)

// How the watch is checked against the bucket: every watchCheck the
// bucket's last revision is read (one stream info request), and the copy is
// trusted until watchTrust after the last check that found the watch had
// delivered every revision the previous check saw. A JetStream that stops
// answering, or a watch that stalls, thus stops the shortcut within
// watchTrust, while the connection stays up.
const (
	watchCheck = 2 * time.Second
	watchTrust = 5 * time.Second
)

// registryWatch keeps a copy of the keys of the PRE registry bucket (see
// pkg/worker registry.go), fed by a watch on the bucket, so that Decide can
// answer NO_TRIGGER for a subject no worker registered without sending the
// request.
//
// The copy is used only while it is known to be current: the watch has
// delivered the bucket's keys as they were when it started, has run since
// without a break, and has kept up with the bucket (checked every
// watchCheck). The connection losing its server (a disconnect, a
// reconnect, the connection closed) or the watch ending makes the copy
// unknown at once, checked on every lookup, and a new watch is started;
// until its first values arrive, Decide sends its requests as without the
// copy. A bucket that JetStream stops serving, or a watch that falls
// behind, makes it unknown within watchTrust.
type registryWatch struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	bucket string

	mu         sync.RWMutex
	keys       map[string]struct{} // the registry's keys; valid while current
	current    bool                // the watch delivered its first values and runs
	maybe      atomic.Bool         // current, read without the lock: false means not current
	reconnects uint64              // the connection's reconnect count when the watch started
	started    bool
	stopped    bool
	begun      atomic.Bool  // start has been called
	trustUntil atomic.Int64 // Unix nanoseconds until which a current copy is trusted

	cancel context.CancelFunc
	done   chan struct{}
}

func newRegistryWatch(nc *nats.Conn, js jetstream.JetStream, bucket string) *registryWatch {
	return &registryWatch{nc: nc, js: js, bucket: bucket, done: make(chan struct{})}
}

// start starts the watch once; later calls do nothing (and take no lock).
func (w *registryWatch) start() {
	if w.begun.Load() {
		return
	}
	w.begun.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return
	}
	w.started = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
}

// stop ends the watch and waits for its goroutine.
func (w *registryWatch) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true // a stopped watch never starts again
	started, cancel := w.started, w.cancel
	w.mu.Unlock()
	if started {
		cancel()
		<-w.done
	}
}

// lookup reports whether the copy is known current and, if so, whether
// typ.option or typ.ANY has a key.
func (w *registryWatch) lookup(typ, option string) (known, registered bool) {
	// A copy that is not current (no bucket, a watch starting again) costs
	// a lookup one atomic load: none of the connection's locks, which
	// every request and reply of the connection takes too.
	if !w.maybe.Load() {
		return false, false
	}
	if !w.nc.IsConnected() {
		return false, false
	}
	reconnects := w.nc.Stats().Reconnects
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.current || reconnects != w.reconnects || time.Now().UnixNano() > w.trustUntil.Load() {
		return false, false
	}
	if _, ok := w.keys[subjects.RegistryKey(typ, option)]; ok {
		return true, true
	}
	_, ok := w.keys[subjects.RegistryKey(typ, subjects.Any)]
	return true, ok
}

// isCurrent reports whether the copy is known current.
func (w *registryWatch) isCurrent() bool {
	known, _ := w.lookup(subjects.Any, subjects.Any)
	return known
}

// run watches the bucket until ctx ends or the connection closes, starting
// the watch again (after a growing pause) whenever it ends.
func (w *registryWatch) run(ctx context.Context) {
	defer close(w.done)
	status := w.nc.StatusChanged()
	defer w.nc.RemoveStatusListener(status)
	pause := watchRetryMin
	for {
		if w.nc.IsClosed() {
			return
		}
		if w.nc.IsConnected() && w.watch(ctx, status) {
			pause = watchRetryMin // it was current: the next attempt starts soon
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-status:
			// Connected again, or closed: try at once.
			t.Stop()
		case <-t.C:
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// watch runs one watch of the bucket until it ends, ctx ends or the
// connection's status changes. It reports whether the copy became current.
func (w *registryWatch) watch(ctx context.Context, status <-chan nats.Status) bool {
	// Read before the watch starts: a reconnect after this makes the copy
	// stale, never a stale copy current.
	reconnects := w.nc.Stats().Reconnects
	defer w.setStale()
	kv, err := w.js.KeyValue(ctx, w.bucket)
	if err != nil {
		// No bucket (no worker with a registry ran here), no JetStream, no
		// permission: Decide sends its requests.
		return false
	}
	_, created, err := w.lastRevision(ctx)
	if err != nil {
		return false
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kw, err := kv.WatchAll(wctx, jetstream.MetaOnly())
	if err != nil {
		return false
	}
	defer func() { _ = kw.Stop() }()
	check := time.NewTicker(watchCheck)
	defer check.Stop()
	keys := map[string]struct{}{}
	became := false
	var delivered, seen uint64 // the last revision delivered; the last one a check saw
	for {
		select {
		case <-ctx.Done():
			return became
		case <-status:
			return became
		case <-check.C:
			last, made, err := w.lastRevision(ctx)
			switch {
			case err != nil:
				// The trust runs out unless a later check succeeds.
				continue
			case !made.Equal(created) || last < delivered:
				// The bucket was deleted and made again: read it anew.
				return became
			case became && delivered >= seen:
				w.trust()
			}
			seen = last
		case e, ok := <-kw.Updates():
			if !ok {
				return became
			}
			if e == nil {
				// Every key the bucket had when the watch started is in.
				w.mu.Lock()
				w.keys, w.current, w.reconnects = keys, true, reconnects
				w.maybe.Store(true)
				w.mu.Unlock()
				w.trust()
				became = true
				continue
			}
			delivered = max(delivered, e.Revision())
			if became {
				w.mu.Lock()
			}
			switch e.Operation() {
			case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
				delete(keys, e.Key())
			default:
				keys[e.Key()] = struct{}{}
			}
			if became {
				w.mu.Unlock()
			}
		}
	}
}

// trust trusts the copy for watchTrust from now.
func (w *registryWatch) trust() {
	w.trustUntil.Store(time.Now().Add(watchTrust).UnixNano())
}

// lastRevision reads the last revision stored in the bucket, and when its
// stream was made.
func (w *registryWatch) lastRevision(ctx context.Context) (uint64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, watchCheck)
	defer cancel()
	st, err := w.js.Stream(ctx, "KV_"+w.bucket)
	if err != nil {
		return 0, time.Time{}, err
	}
	info := st.CachedInfo()
	return info.State.LastSeq, info.Created, nil
}

func (w *registryWatch) setStale() {
	w.mu.Lock()
	w.current, w.keys = false, nil
	w.maybe.Store(false)
	w.mu.Unlock()
}
