package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [ArchiveConfig].
const (
	DefaultArchiveMaxAge   = 7 * 24 * time.Hour
	DefaultArchiveMaxBytes = 1 << 30
	// DefaultArchiveSourceWait bounds how long Start waits for the archive's
	// source to reach the event stream.
	DefaultArchiveSourceWait = 30 * time.Second
)

// ArchiveConfig turns on the event archive: the stream <PREFIX>_ARCHIVE,
// with limits retention, sources the event stream, so that every POST and
// SCHEDULED event stored there stays after it was handled (the event stream
// retains by interest and drops it once acked). `trigger-worker replay`
// publishes archived events again. It needs durable delivery.
//
// The source is a consumer the server creates on the event stream; as that
// stream retains by interest, the server makes it durable, acked as the
// archive answers its flow control. It counts as interest there, so an
// event is removed only once the workers' consumer acked it and the archive
// stored it. Start waits (up to SourceWait) for that consumer before the
// workers' consumer takes events: an event acked before the source exists
// is never archived.
type ArchiveConfig struct {
	// MaxAge (-1 unlimited) and MaxBytes (-1 unlimited) bound the archive,
	// the oldest events going first; 0 means the defaults (7 days, 1 GiB).
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas of the stream; 0 means those of the event stream.
	Replicas int
	// SourceWait bounds the set-up of the archive at Start, the wait for
	// its source included; 0 means DefaultArchiveSourceWait. Past it the
	// worker starts anyway and logs an error: events acked before the
	// source exists are not archived.
	SourceWait time.Duration
}

func (c *ArchiveConfig) setDefaults(eventReplicas int) {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultArchiveMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultArchiveMaxBytes
	}
	if c.Replicas <= 0 {
		c.Replicas = eventReplicas
	}
	if c.SourceWait <= 0 {
		c.SourceWait = DefaultArchiveSourceWait
	}
}

// setupArchive creates or updates the archive stream and waits until its
// source consumer exists on the event stream.
func (w *Worker) setupArchive(ctx context.Context) error {
	d := w.durable
	a := d.cfg.Archive
	name := w.scheme.ArchiveStream()
	// SourceWait bounds the whole set-up: a request the server does not
	// answer (no permission) must not use up the worker's start.
	ctx, cancel := context.WithTimeout(ctx, a.SourceWait)
	defer cancel()
	_, err := d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "triggerbus: every POST and SCHEDULED event of the event stream, kept after it was handled",
		Sources:     []*jetstream.StreamSource{{Name: w.scheme.EventStream()}},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      max(a.MaxAge, 0),
		MaxBytes:    a.MaxBytes,
		Replicas:    a.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", name, err)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := w.archiveSourceActive(ctx)
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("worker: the source of %s did not reach %s within %v: %w",
				name, w.scheme.EventStream(), a.SourceWait, err)
		case <-t.C:
		}
	}
}

// archiveSourceActive reports whether the archive's source has its consumer
// on the event stream: the archive's server has heard from it (the
// source's Active is -1 until then). It reads the archive's stream info
// only, so that a worker needs no right on the event stream's consumers
// beside its own.
func (w *Worker) archiveSourceActive(ctx context.Context) (bool, error) {
	_, info, err := streamInfo(ctx, w.durable.js, w.scheme.ArchiveStream())
	if err != nil {
		return false, err
	}
	for _, si := range info.Sources {
		if si != nil && si.Name == w.scheme.EventStream() && si.Active >= 0 {
			return true, nil
		}
	}
	return false, nil
}
