package main

// The POST durable drain row: --drain-events events are stored in the
// stream before the run, then one worker side drains them, acking each. It
// measures the consumer's cost alone, which the POST durable row hides
// behind its publishers. The row is defined here, in a file of its own,
// with addRow and addMode: a new row is built the same way.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const (
	modePostDrain  = "post-drain"
	rawDrainStream = "RAWDRAIN_EVENTS"
)

func init() {
	addRow("post-drain", func(b *bench) *scenario {
		return &scenario{name: "post-drain", title: "POST durable drain",
			variants: []variant{
				{name: sideRaw, side: sideRaw, mode: modePostDrain, drive: driveDrain},
				{name: sideOurs, side: sideOurs, mode: modePostDrain, drive: driveDrain},
			},
			target: "events/s >= 0.8x raw, CPU/event <= 2.5x",
			met:    func(r *ratios) bool { return r.Throughput.Median >= 0.8 && r.CPU.Median <= 2.5 }}
	})
	addMode(modePostDrain, sideRaw, setupRawDrain)
	addMode(modePostDrain, sideOurs, setupOursDrain)
}

// setupRawDrain creates the raw stream and consumer (the worker's
// settings, see rawDurableConsumer) and consumes from "start" on, acking
// every event.
func setupRawDrain(ctx context.Context, url, prefix string, c *counter) (measuredSide, error) {
	nc, err := nats.Connect(url, nats.Name("trigger-bench-raw"))
	if err != nil {
		return measuredSide{}, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return measuredSide{}, err
	}
	cons, err := rawDurableConsumer(ctx, js, rawDrainStream, prefix)
	if err != nil {
		nc.Close()
		return measuredSide{}, err
	}
	var cc jetstream.ConsumeContext
	return measuredSide{
		begin: func() error {
			cc, err = cons.Consume(func(m jetstream.Msg) {
				c.handled(nil, false)
				_ = m.Ack()
			}, jetstream.PullMaxMessages(worker.DefaultMaxInFlight))
			return err
		},
		stop: func() error {
			if cc != nil {
				cc.Drain()
				<-cc.Closed()
			}
			return nc.Drain()
		},
	}, nil
}

// setupOursDrain starts a worker whose durable consumer follows the
// fleet's active revision (see worker.DurableConfig.FollowActive) and
// serves revision 1 while none is active: it sets up the event stream and
// its consumer but takes no event until "start" makes revision 1 active.
func setupOursDrain(ctx context.Context, url, prefix string, c *counter) (measuredSide, error) {
	opts, err := natsconn.Options(natsconn.Config{URL: url, Name: "trigger-bench-worker"}, natsconn.Events{})
	if err != nil {
		return measuredSide{}, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return measuredSide{}, err
	}
	fn := worker.Function{Ref: "noop", TriggerType: "POST_CREATE", Options: []string{benchOption},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			c.handled(nil, false)
			return handlers.Result{}, nil
		})}
	w, err := worker.New(nc, worker.Config{Prefix: prefix, Durable: &worker.DurableConfig{FollowActive: true}, Logger: workerLogger()})
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err = w.Start(sctx); err == nil {
			err = w.ReplaceRevision(sctx, 1, fn)
		}
		if err != nil {
			err = errors.Join(err, w.Stop(context.Background()))
		}
	}
	if err != nil {
		nc.Close()
		return measuredSide{}, err
	}
	return measuredSide{
		begin: func() error {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			return w.SetActive(sctx, 1)
		},
		stop: func() error {
			err := w.Stop(context.Background())
			nc.Close()
			return err
		},
	}, nil
}

// driveDrain stores --drain-events events in the variant's stream (the
// same document and Nats-Msg-Id on both sides), starts the worker side and
// waits until it handled them all. Throughput is the events over the time
// from the first handled to the last.
func driveDrain(ctx context.Context, b *bench, r *runEnv) (*measured, error) {
	n := int64(b.opt.drainEvents)
	var pubErrs atomic.Int64
	var firstErr atomic.Pointer[string]
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			pubErrs.Add(1)
			msg := err.Error()
			firstErr.CompareAndSwap(nil, &msg)
		}))
	if err != nil {
		return nil, err
	}
	subject := subjectOf(r.mode, r.side)
	// In batches the stream acknowledges before the next: a busy server
	// never sees more than preloadBatch publishes outstanding.
	const preloadBatch = 1024
	for i := range n {
		id := b.payload.id()
		m := nats.NewMsg(subject)
		m.Data = b.payload.rawWithID(id, "POST_CREATE", time.Now().UnixNano(), 0)
		m.Header.Set(subjects.HeaderMsgID, id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		if (i+1)%preloadBatch != 0 && i+1 != n {
			continue
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			return nil, errors.New("preload: the stream did not acknowledge a batch of events within a minute")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := pubErrs.Load(); e > 0 {
		return nil, fmt.Errorf("preload: %d of %d events not stored (first: %s)", e, n, *firstErr.Load())
	}

	if err := r.child.send("start"); err != nil {
		return nil, err
	}
	if _, err := r.child.expect("started", time.Minute); err != nil {
		return nil, err
	}
	var handled int64
	last, lastAt := int64(-1), time.Now()
	for handled < n {
		msg, err := b.ctl.Request(r.ctl+".count", nil, 2*time.Second)
		if err != nil {
			return nil, fmt.Errorf("ask the worker side for its count: %w", err)
		}
		if handled, err = strconv.ParseInt(string(msg.Data), 10, 64); err != nil {
			return nil, err
		}
		if handled != last {
			last, lastAt = handled, time.Now()
		} else if time.Since(lastAt) > stallTimeout {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st, err := stopChild(r.child)
	if err != nil {
		return nil, err
	}
	m := &measured{events: st.Events, lat: st.Latency.hist(), lost: max(n-st.Events, 0), stats: st}
	if st.Events > 0 {
		m.seconds = float64(st.LastNs-st.FirstNs) / 1e9
	}
	return m, nil
}
