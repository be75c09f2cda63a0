package worker

import (
	"context"
	"errors"
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

// archiveSourceMeta is the metadata key the NATS server puts on the
// consumer a sourcing stream creates on its origin: the sourcing stream's
// name.
const archiveSourceMeta = "_nats.src.stream"

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
	// SourceWait bounds the wait for the source at Start; 0 means
	// DefaultArchiveSourceWait. Past it the worker starts anyway and logs
	// an error: events acked before the source exists are not archived.
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
	wctx, cancel := context.WithTimeout(ctx, a.SourceWait)
	defer cancel()
	events, err := d.js.Stream(wctx, w.scheme.EventStream())
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", w.scheme.EventStream(), err)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		found, err := sourceConsumers(wctx, events, name)
		if len(found) > 0 {
			return nil
		}
		select {
		case <-wctx.Done():
			if err == nil {
				err = wctx.Err()
			}
			return fmt.Errorf("worker: the source of %s did not reach %s within %v: %w",
				name, w.scheme.EventStream(), a.SourceWait, err)
		case <-t.C:
		}
	}
}

// dropOrphanSource deletes, from the event stream, a consumer of the
// archive's source whose archive stream no longer exists. The server makes
// that consumer durable (the event stream retains by interest) and deletes
// it with the archive in a single try; one left behind would keep every
// event in the event stream until it is full.
func (w *Worker) dropOrphanSource(ctx context.Context) error {
	d := w.durable
	name := w.scheme.ArchiveStream()
	events, err := d.js.Stream(ctx, w.scheme.EventStream())
	if err != nil {
		return err
	}
	orphans, err := sourceConsumers(ctx, events, name)
	if err != nil || len(orphans) == 0 {
		return err
	}
	if _, err := d.js.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err // the archive exists (another worker's): its source is no orphan
	}
	for _, c := range orphans {
		if err := events.DeleteConsumer(ctx, c); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		w.log.Warn("deleted the consumer of a deleted archive's source, which held the events", "stream", w.scheme.EventStream(), "consumer", c, "archive", name)
	}
	return nil
}

// sourceConsumers returns the consumers of the stream named archive's
// source on the event stream.
func sourceConsumers(ctx context.Context, events jetstream.Stream, archive string) ([]string, error) {
	var names []string
	l := events.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Metadata[archiveSourceMeta] == archive {
			names = append(names, ci.Name)
		}
	}
	if err := l.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return names, err
	}
	return names, nil
}
