package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// stallTimeout is how long the driver waits for the worker side to handle
// one more event before it gives the missing ones up as lost.
const stallTimeout = 10 * time.Second

// runEnv is one run of one variant: its worker-side child and control subjects.
type runEnv struct {
	child *child
	ctl   string // control subject prefix
	mode  string
	side  string
	// driverProfile is where the driver writes a CPU profile of its
	// measured phase (PRE rows); "" for none.
	driverProfile string
}

// measured is what a driver measured in one run, before the worker side's
// figures are added.
type measured struct {
	events  int64
	seconds float64
	lat     *hist
	errs    int64
	lost    int64
	firstEr string
	stats   childStats
}

// publisher sends one POST event stamped with sentNs.
type publisher func(ctx context.Context, sentNs int64) error

// postPublisher returns the publisher of a POST variant.
func (b *bench) postPublisher(r *runEnv) (publisher, error) {
	subject := subjectOf(r.mode, r.side)
	switch {
	case r.side == sideRaw && r.mode == modePostCore:
		return func(_ context.Context, sentNs int64) error {
			return b.nc.Publish(subject, b.payload.raw("POST_CREATE", sentNs))
		}, nil
	case r.side == sideRaw && r.mode == modePostDurable:
		js, err := jetstream.New(b.nc)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, sentNs int64) error {
			id := b.payload.id()
			m := nats.NewMsg(subject)
			m.Data = b.payload.rawWithID(id, "POST_CREATE", sentNs, 0)
			m.Header.Set(subjects.HeaderMsgID, id)
			_, err := js.PublishMsg(ctx, m)
			return err
		}, nil
	case r.side == sideOurs:
		c, err := client.New(b.nc, client.Options{Prefix: prefixOf(r.mode, r.side), Durable: r.mode == modePostDurable})
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, sentNs int64) error {
			_, err := c.Publish(ctx, "POST_CREATE", benchOption, b.payload.event(sentNs))
			return err
		}, nil
	}
	return nil, fmt.Errorf("no POST publisher for %s %s", r.side, r.mode)
}

// drivePost measures a POST variant: conc publishers send events for the
// run's duration, keeping at most --window events sent but not yet handled
// (the worker side reports its count every progressEvery events), then the
// driver waits until every event has been handled. Throughput is the events
// handled over the time from the first send to the last event handled;
// latency is each event's time from send to function, recorded by the
// worker side.
func (b *bench) drivePost(ctx context.Context, r *runEnv, conc int) (*measured, error) {
	pub, err := b.postPublisher(r)
	if err != nil {
		return nil, err
	}
	var handled atomic.Int64
	seen := func(n int64) {
		for {
			h := handled.Load()
			if n <= h || handled.CompareAndSwap(h, n) {
				return
			}
		}
	}
	progressed := make(chan struct{}, 1) // a wake-up; one pending is enough
	sub, err := b.ctl.Subscribe(r.ctl+".progress", func(m *nats.Msg) {
		if n, err := strconv.ParseInt(string(m.Data), 10, 64); err == nil {
			seen(n)
		}
		select {
		case progressed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.ctl.Flush(); err != nil {
		return nil, err
	}
	poll := func() error {
		msg, err := b.ctl.Request(r.ctl+".count", nil, 2*time.Second)
		if err != nil {
			return fmt.Errorf("ask the worker side for its count: %w", err)
		}
		n, err := strconv.ParseInt(string(msg.Data), 10, 64)
		if err != nil {
			return err
		}
		seen(n)
		return nil
	}

	var sent, errs atomic.Int64
	var firstErr atomic.Pointer[string]
	window := int64(b.opt.window)
	phase := func(d time.Duration) error {
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		var pollErr atomic.Pointer[error]
		for range conc {
			wg.Go(func() {
				wait := time.NewTimer(time.Hour)
				defer wait.Stop()
				for time.Now().Before(end) && ctx.Err() == nil {
					for sent.Load()-handled.Load() >= window {
						wait.Reset(100 * time.Millisecond)
						select {
						case <-progressed:
						case <-wait.C:
							if err := poll(); err != nil {
								pollErr.Store(&err)
								return
							}
						case <-ctx.Done():
							return
						}
						if !time.Now().Before(end) {
							return
						}
					}
					sent.Add(1)
					if err := pub(ctx, time.Now().UnixNano()); err != nil {
						sent.Add(-1)
						errs.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
					}
				}
			})
		}
		wg.Wait()
		if err := b.nc.Flush(); err != nil {
			return err
		}
		if p := pollErr.Load(); p != nil {
			return *p
		}
		return ctx.Err()
	}
	// drain waits until every event sent has been handled, or none more is
	// for stallTimeout; it returns how many were lost.
	drain := func() (int64, error) {
		last, lastAt := handled.Load(), time.Now()
		for {
			if err := poll(); err != nil {
				return 0, err
			}
			h := handled.Load()
			if h >= sent.Load() {
				return 0, nil
			}
			if h != last {
				last, lastAt = h, time.Now()
			} else if time.Since(lastAt) > stallTimeout {
				return sent.Load() - h, nil
			}
			select {
			case <-progressed:
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}

	if err := phase(b.opt.warmup); err != nil {
		return nil, err
	}
	if _, err := drain(); err != nil {
		return nil, err
	}
	if err := r.child.send("start"); err != nil {
		return nil, err
	}
	if _, err := r.child.expect("started", 10*time.Second); err != nil {
		return nil, err
	}
	errs.Store(0)
	firstErr.Store(nil)
	startNs := time.Now().UnixNano()
	if err := phase(b.opt.duration); err != nil {
		return nil, err
	}
	lost, err := drain()
	if err != nil {
		return nil, err
	}
	st, err := stopChild(r.child)
	if err != nil {
		return nil, err
	}
	m := &measured{events: st.Events, lat: st.Latency.hist(), errs: errs.Load(), lost: lost, stats: st}
	if p := firstErr.Load(); p != nil {
		m.firstEr = *p
	}
	if st.Events > 0 {
		m.seconds = float64(st.LastNs-startNs) / 1e9
	}
	return m, nil
}

// requester makes one PRE request and says whether the answer is the one
// expected.
type requester func(ctx context.Context, sentNs int64) error

// preRequester returns the requester of a PRE variant.
func (b *bench) preRequester(r *runEnv) (requester, error) {
	if r.side == sideRaw {
		subject := subjectOf(r.mode, r.side)
		return func(_ context.Context, sentNs int64) error {
			msg, err := b.nc.Request(subject, b.payload.rawPre(sentNs), client.DefaultDecideTimeout)
			if err != nil {
				return err
			}
			if len(msg.Data) == 0 {
				return errors.New("empty reply")
			}
			return nil
		}, nil
	}
	c, err := client.New(b.nc, client.Options{Prefix: prefixOf(r.mode, r.side)})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, sentNs int64) error {
		d, err := c.Decide(ctx, "PRE_CREATE", benchOption, b.payload.event(sentNs))
		if err != nil {
			return err
		}
		if !d.Allowed || len(d.Functions) == 0 {
			return fmt.Errorf("decision allowed=%v code=%q message=%q after %d functions", d.Allowed, d.Code, d.Message, len(d.Functions))
		}
		return nil
	}, nil
}

// drivePre measures a PRE variant: conc requesters each send a request as
// soon as the last one is answered, for the run's duration. Latency is the
// round trip; throughput the requests answered over the duration.
func (b *bench) drivePre(ctx context.Context, r *runEnv, conc int) (*measured, error) {
	req, err := b.preRequester(r)
	if err != nil {
		return nil, err
	}
	return b.drivePreWith(ctx, r, conc, req)
}

// drivePreWith is drivePre with the requester req.
func (b *bench) drivePreWith(ctx context.Context, r *runEnv, conc int, req requester) (*measured, error) {
	var errs atomic.Int64
	var firstErr atomic.Pointer[string]
	phase := func(d time.Duration) (n int64, h *hist, seconds float64) {
		hs := make([]hist, conc)
		start := time.Now()
		end := start.Add(d)
		var wg sync.WaitGroup
		for i := range conc {
			wg.Go(func() {
				for ctx.Err() == nil {
					t0 := time.Now()
					if !t0.Before(end) {
						return
					}
					if err := req(ctx, t0.UnixNano()); err != nil {
						errs.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
						continue
					}
					hs[i].record(time.Since(t0))
				}
			})
		}
		wg.Wait()
		seconds = time.Since(start).Seconds()
		h = &hist{}
		for i := range hs {
			h.merge(&hs[i])
		}
		return int64(h.n), h, seconds
	}
	phase(b.opt.warmup)
	if err := r.child.send("start"); err != nil {
		return nil, err
	}
	if _, err := r.child.expect("started", 10*time.Second); err != nil {
		return nil, err
	}
	errs.Store(0)
	firstErr.Store(nil)
	stopProfile, err := startProfile(r.driverProfile)
	if err != nil {
		return nil, err
	}
	n, h, seconds := phase(b.opt.duration)
	if err := stopProfile(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := stopChild(r.child)
	if err != nil {
		return nil, err
	}
	m := &measured{events: n, seconds: seconds, lat: h, errs: errs.Load(), stats: st}
	if p := firstErr.Load(); p != nil {
		m.firstEr = *p
	}
	return m, nil
}

// stopChild ends the measured phase and reads the worker side's figures.
func stopChild(c *child) (childStats, error) {
	var st childStats
	if err := c.send("stop"); err != nil {
		return st, err
	}
	line, err := c.expect("stats", 30*time.Second)
	if err != nil {
		return st, err
	}
	if err := jsonUnmarshal(line, &st); err != nil {
		return st, fmt.Errorf("stats of %s: %w", c.name, err)
	}
	return st, nil
}

// startProfile starts a CPU profile of this process into path and returns
// what stops it; with path "" it does nothing.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
