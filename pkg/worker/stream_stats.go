package worker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamGauges are the gauges of the durable delivery's JetStream state,
// read from the server every [DurableConfig.StatsInterval]: they are the
// fleet's, the same on every worker.
type StreamGauges struct {
	EventMessages   prometheus.Gauge
	EventBytes      prometheus.Gauge
	EventLimitBytes prometheus.Gauge
	Pending         prometheus.Gauge
	AckPending      prometheus.Gauge
	Redelivered     prometheus.Gauge
	DeadLetterMsgs  prometheus.Gauge
	DeadLetterBytes prometheus.Gauge
	// The archive's, with [DurableConfig.Archive]; zero without.
	ArchiveMessages   prometheus.Gauge
	ArchiveBytes      prometheus.Gauge
	ArchiveLimitBytes prometheus.Gauge
	LastRefreshEpoch  prometheus.Gauge
}

func newStreamGauges() StreamGauges {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	return StreamGauges{
		EventMessages:     g("trigger_event_stream_messages", "Events stored in the event stream (durable delivery), not yet consumed by every interested consumer."),
		EventBytes:        g("trigger_event_stream_bytes", "Bytes stored in the event stream."),
		EventLimitBytes:   g("trigger_event_stream_limit_bytes", "The event stream's max bytes; 0 when unlimited."),
		Pending:           g("trigger_consumer_pending", "Events in the stream the workers' consumer has not delivered yet (num_pending)."),
		AckPending:        g("trigger_consumer_ack_pending", "Events delivered to workers and not acknowledged yet (num_ack_pending)."),
		Redelivered:       g("trigger_consumer_redelivered", "Events delivered more than once and not acknowledged yet (num_redelivered)."),
		DeadLetterMsgs:    g("trigger_dead_letter_stream_messages", "Dead letters stored in the dead-letter stream."),
		DeadLetterBytes:   g("trigger_dead_letter_stream_bytes", "Bytes stored in the dead-letter stream."),
		ArchiveMessages:   g("trigger_archive_stream_messages", "Events kept in the event archive (archive.enabled); 0 without an archive."),
		ArchiveBytes:      g("trigger_archive_stream_bytes", "Bytes stored in the event archive."),
		ArchiveLimitBytes: g("trigger_archive_stream_limit_bytes", "The event archive's max bytes (the oldest events go first past it); 0 when unlimited or without an archive."),
		LastRefreshEpoch:  g("trigger_stream_stats_last_refresh_timestamp_seconds", "When the worker last read the stream gauges from JetStream (Unix time)."),
	}
}

func (g StreamGauges) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		g.EventMessages, g.EventBytes, g.EventLimitBytes, g.Pending, g.AckPending,
		g.Redelivered, g.DeadLetterMsgs, g.DeadLetterBytes,
		g.ArchiveMessages, g.ArchiveBytes, g.ArchiveLimitBytes, g.LastRefreshEpoch,
	}
}

// RefreshStreamStats reads the event stream, the workers' consumer, the
// dead-letter stream and the archive (when on) once and sets the stream gauges. A worker with durable
// delivery does it every [DurableConfig.StatsInterval]; without durable
// delivery it does nothing. A consumer that does not exist yet (no POST
// function in the fleet) reads as zero.
func (w *Worker) RefreshStreamStats(ctx context.Context) error {
	d := w.durable
	if d == nil {
		return nil
	}
	g := w.metrics.Streams
	var errs []error
	if s, info, err := streamInfo(ctx, d.js, w.scheme.EventStream()); err != nil {
		errs = append(errs, err)
	} else {
		g.EventMessages.Set(float64(info.State.Msgs))
		g.EventBytes.Set(float64(info.State.Bytes))
		g.EventLimitBytes.Set(float64(max(info.Config.MaxBytes, 0)))
		c, err := s.Consumer(ctx, w.cfg.Queue)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			g.Pending.Set(0)
			g.AckPending.Set(0)
			g.Redelivered.Set(0)
		case err != nil:
			errs = append(errs, err)
		default:
			if ci, err := c.Info(ctx); err != nil {
				errs = append(errs, err)
			} else {
				g.Pending.Set(float64(ci.NumPending))
				g.AckPending.Set(float64(ci.NumAckPending))
				g.Redelivered.Set(float64(ci.NumRedelivered))
			}
		}
	}
	if _, info, err := streamInfo(ctx, d.js, w.scheme.DeadLetterStream()); err != nil {
		errs = append(errs, err)
	} else {
		g.DeadLetterMsgs.Set(float64(info.State.Msgs))
		g.DeadLetterBytes.Set(float64(info.State.Bytes))
	}
	if d.cfg.Archive != nil {
		if _, info, err := streamInfo(ctx, d.js, w.scheme.ArchiveStream()); err != nil {
			errs = append(errs, err)
		} else {
			g.ArchiveMessages.Set(float64(info.State.Msgs))
			g.ArchiveBytes.Set(float64(info.State.Bytes))
			g.ArchiveLimitBytes.Set(float64(max(info.Config.MaxBytes, 0)))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	g.LastRefreshEpoch.Set(float64(time.Now().Unix()))
	return nil
}

// streamInfo reads the stream named name and its info.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, *jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	info, err := s.Info(ctx)
	return s, info, err
}

// runStreamStats refreshes the stream gauges every interval until ctx ends.
func (w *Worker) runStreamStats(ctx context.Context, interval time.Duration, done func()) {
	defer done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, min(interval, 10*time.Second))
		if err := w.RefreshStreamStats(rctx); err != nil && ctx.Err() == nil {
			w.log.Warn("stream gauges", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
