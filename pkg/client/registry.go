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

// registryWatch keeps a copy of the keys of the PRE registry bucket (see
// pkg/worker registry.go), fed by a watch on the bucket, so that Decide can
// answer NO_TRIGGER for a subject no worker registered without sending the
// request.
//
// The copy is used only while it is known to be current: the watch has
// delivered the bucket's keys as they were when it started, and has run
// since without a break. The connection losing its server (a disconnect,
// a reconnect, the connection closed) or the watch ending makes the copy
// unknown at once, checked on every lookup, and a new watch is started;
// until its first values arrive, Decide sends its requests as without the
// copy.
type registryWatch struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	bucket string

	mu         sync.RWMutex
	keys       map[string]struct{} // the registry's keys; valid while current
	current    bool                // the watch delivered its first values and runs
	reconnects uint64              // the connection's reconnect count when the watch started
	started    bool
	stopped    bool
	begun      atomic.Bool // start has been called

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
	if !w.nc.IsConnected() {
		return false, false
	}
	reconnects := w.nc.Stats().Reconnects
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.current || reconnects != w.reconnects {
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
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kw, err := kv.WatchAll(wctx, jetstream.MetaOnly())
	if err != nil {
		return false
	}
	defer func() { _ = kw.Stop() }()
	keys := map[string]struct{}{}
	became := false
	for {
		select {
		case <-ctx.Done():
			return became
		case <-status:
			return became
		case e, ok := <-kw.Updates():
			if !ok {
				return became
			}
			if e == nil {
				// Every key the bucket had when the watch started is in.
				w.mu.Lock()
				w.keys, w.current, w.reconnects = keys, true, reconnects
				w.mu.Unlock()
				became = true
				continue
			}
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

func (w *registryWatch) setStale() {
	w.mu.Lock()
	w.current, w.keys = false, nil
	w.mu.Unlock()
}
