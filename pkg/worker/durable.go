package worker

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Headers of a dead letter, beside the original event's headers.
const (
	HeaderFailedFunction = "Trigger-Failed-Function"
	HeaderError          = "Trigger-Error"
	HeaderAttempts       = "Trigger-Attempts"
	HeaderSubject        = "Trigger-Subject"
	HeaderFailedAt       = "Trigger-Failed-At"
	// HeaderOriginalMsgID is the event's Nats-Msg-Id, or its id when it
	// came without one (the dead letter's own is dlq.<HeaderEventSeq>).
	HeaderOriginalMsgID = "Trigger-Msg-Id"
	// HeaderEventSeq is the event's sequence in the event stream.
	HeaderEventSeq = "Trigger-Event-Seq"
	// HeaderBodyTruncated, on a dead letter whose event did not fit the
	// max payload beside its headers, is the event's size in bytes; the
	// dead letter holds only its start (or nothing), and cannot be replayed.
	HeaderBodyTruncated = "Trigger-Body-Truncated"
	// HeaderHeadersDropped, on a dead letter whose event's own headers left
	// no room, names the headers of the event it does not keep.
	HeaderHeadersDropped = "Trigger-Headers-Dropped"
	// HeaderSchedule names the function a SCHEDULED tick is for; a
	// SCHEDULED event without it runs every SCHEDULED function.
	HeaderSchedule = "Trigger-Schedule"
	// HeaderReplay marks an event published again by `trigger-worker dlq
	// replay`, with the original event id.
	HeaderReplay = "Trigger-Replay"
	// HeaderReplayFunction, on a replayed event, names the one function
	// that runs it (the others matching its subject do not).
	HeaderReplayFunction = "Trigger-Replay-Function"
)

// Defaults of [DurableConfig].
var (
	DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
)

// Defaults of [DurableConfig].
const (
	DefaultMaxDeliver      = 5
	DefaultAckWait         = 30 * time.Second
	DefaultMaxAckPending   = 1000
	DefaultStreamMaxAge    = 24 * time.Hour
	DefaultStreamMaxBytes  = 1 << 30
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultDoneTTL         = 24 * time.Hour
	DefaultDeadLetterAge   = 14 * 24 * time.Hour
	DefaultStatsInterval   = 15 * time.Second
)

// DurableConfig turns on durable delivery: POST and SCHEDULED events are
// captured by a JetStream stream and consumed by all workers through one
// durable pull consumer. Zero values mean the defaults.
type DurableConfig struct {
	// MaxDeliver is how many times an event is attempted before it goes to
	// the dead-letter stream; -1 is unlimited.
	MaxDeliver int
	// Backoff is the delay before each redelivery of a failed event; the
	// last one repeats.
	Backoff []time.Duration
	// AckWait is how long a delivery may go without an ack or a progress
	// signal before the server delivers the event again. Long functions send
	// progress signals, so it bounds the detection of a lost worker.
	AckWait time.Duration
	// MaxAckPending bounds the fleet's unacknowledged events.
	MaxAckPending int
	// StreamMaxAge (-1 unlimited), StreamMaxBytes (-1 unlimited), Replicas
	// and DuplicateWindow configure the event stream.
	StreamMaxAge    time.Duration
	StreamMaxBytes  int64
	Replicas        int
	DuplicateWindow time.Duration
	// DoneTTL is how long the record of a function that succeeded for an
	// event is kept, to skip it on a redelivery.
	DoneTTL time.Duration
	// DiscardOld makes a full event stream delete its oldest events, which
	// may not have been delivered yet, to store new ones. false (the
	// default): a full stream refuses new events, and a durable publish
	// fails, so that no stored event is lost without a trace.
	DiscardOld bool
	// StatsInterval is how often the worker reads the event stream, its
	// consumer and the dead-letter stream for the stream gauges (see
	// [Worker.RefreshStreamStats]); default 15s, -1 never.
	StatsInterval time.Duration
	// FollowActive is for workers that serve the revisions of a function
	// bundle: the consumer has no filter (it takes every POST and SCHEDULED
	// subject of the prefix, the stream's subjects), the same whatever the
	// revision, so that workers never overwrite each other's filter and no
	// event is discarded for want of interest while the fleet switches;
	// and a worker takes events only while its functions are the fleet's
	// active revision (see [Worker.SetActive]). An event that reaches a
	// worker on another revision goes back for redelivery (after 50ms), to
	// a worker on the active one; a worker on the active revision acks the
	// events it has no function for. false: the filter is the POST subjects
	// of the worker's functions.
	FollowActive bool
	// Archive, when set, keeps every event of the event stream in the
	// archive stream after it was handled (see [ArchiveConfig]).
	Archive *ArchiveConfig
}

// switchRedelivery is how long an event that reached a worker not on the
// active revision waits before it is delivered again.
const switchRedelivery = 50 * time.Millisecond

func (c *DurableConfig) setDefaults() {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.StreamMaxAge == 0 {
		c.StreamMaxAge = DefaultStreamMaxAge
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.StreamMaxBytes == 0 {
		c.StreamMaxBytes = DefaultStreamMaxBytes
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.DoneTTL <= 0 {
		c.DoneTTL = DefaultDoneTTL
	}
	if c.Archive != nil {
		a := *c.Archive
		a.setDefaults(c.Replicas)
		c.Archive = &a
	}
}

// durable is the worker's JetStream side.
type durable struct {
	cfg  DurableConfig
	js   jetstream.JetStream
	done jetstream.KeyValue
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	// handOff is how many more events the consumer hands to the
	// dispatchers, whatever their functions, after an event it ran inline
	// turned out slow (inline.go).
	handOff atomic.Int32
}

// postTypes lists the POST-phase types (with SCHEDULED), whose subjects the
// event stream captures.
func postTypes() []*subjects.TriggerType {
	var out []*subjects.TriggerType
	for _, t := range subjects.Types() {
		if !t.IsPre() {
			out = append(out, t)
		}
	}
	return out
}

// setupStreams creates or updates the event and dead-letter streams and the
// done bucket. It is idempotent, and safe to run from several workers at once.
func (w *Worker) setupStreams(ctx context.Context) error {
	d := w.durable
	var subs []string
	for _, t := range postTypes() {
		subs = append(subs, w.scheme.Pattern(t.Name, subjects.Any))
	}
	maxBytes := d.cfg.StreamMaxBytes
	maxAge := max(d.cfg.StreamMaxAge, 0) // -1: unlimited, JetStream's 0
	discard := jetstream.DiscardNew
	if d.cfg.DiscardOld {
		discard = jetstream.DiscardOld
	}
	// CreateOrUpdateStream applies the limits and discard policy to an
	// existing stream too: the last worker started sets them for the fleet.
	_, err := d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        w.scheme.EventStream(),
		Description: "triggerbus: POST and SCHEDULED trigger events for durable delivery",
		Subjects:    subs,
		Retention:   jetstream.InterestPolicy,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Replicas:    d.cfg.Replicas,
		Duplicates:  d.cfg.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Discard:     discard,
	})
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", w.scheme.EventStream(), err)
	}
	_, err = d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        w.scheme.DeadLetterStream(),
		Description: "triggerbus: events that failed every delivery, with the reason",
		Subjects:    []string{w.deadLetterSubjects()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      DefaultDeadLetterAge,
		MaxBytes:    maxBytes,
		Replicas:    d.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", w.scheme.DeadLetterStream(), err)
	}
	d.done, err = d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      w.doneBucket(),
		Description: "triggerbus: functions done for redelivered events",
		TTL:         d.cfg.DoneTTL,
		History:     1,
		Replicas:    d.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("worker: bucket %s: %w", w.doneBucket(), err)
	}
	if d.cfg.Archive != nil {
		if err := w.setupArchive(ctx); err != nil {
			// Events are handled all the same; those acked before the
			// source exists are not archived.
			w.log.Error("event archive not set up; events are handled but may not be archived", "err", err)
		}
	}
	return nil
}

// deadLetterSubjects is the subject space of the dead-letter stream:
// <prefix>.dlq.<TYPE>.<OPTION>.
func (w *Worker) deadLetterSubjects() string { return w.scheme.DeadLetters() }

func (w *Worker) doneBucket() string { return w.scheme.EventStream() + "_DONE" }

// updateConsumer points the shared consumer at the POST subjects of set and
// (re)starts consuming. With no POST functions it stops consuming. A
// consumer that follows the active revision has no filter: it takes every
// event of the stream, whose subjects are every POST and SCHEDULED subject of
// the prefix (setupStreams), and the server delivers from an unfiltered
// consumer without matching each event against a list of filters.
func (w *Worker) updateConsumer(ctx context.Context, set *matcher.Set) error {
	d := w.durable
	_, post := set.Subscriptions(w.scheme)
	consume := len(post) > 0
	if d.cfg.FollowActive {
		post = nil
		consume = w.onActive(w.state.Load())
	} else if len(post) == 0 {
		return w.stopConsuming()
	}
	cons, err := d.js.CreateOrUpdateConsumer(ctx, w.scheme.EventStream(), jetstream.ConsumerConfig{
		Durable:        w.cfg.Queue,
		Description:    "triggerbus workers",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        d.cfg.AckWait,
		MaxDeliver:     -1, // the worker dead-letters after MaxDeliver itself
		MaxAckPending:  d.cfg.MaxAckPending,
		FilterSubjects: post,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("worker: consumer %s: %w", w.cfg.Queue, err)
	}
	d.cons = cons
	if !consume {
		return w.stopConsuming()
	}
	if d.cc != nil {
		return nil // the running Consume follows the updated filter
	}
	cc, err := cons.Consume(w.onDurable,
		jetstream.PullMaxMessages(w.cfg.MaxInFlight),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionClosed) {
				w.log.Debug("durable consume", "err", err)
				return
			}
			w.log.Warn("durable consume", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("worker: consume: %w", err)
	}
	d.cc = cc
	return nil
}

// stopConsuming stops taking events from the consumer; the events already
// fetched are run (inline.go) or handed to the dispatchers first. Called
// with w.mu held.
func (w *Worker) stopConsuming() error {
	d := w.durable
	if d.cc != nil {
		d.cc.Drain()
		<-d.cc.Closed()
		d.cc = nil
	}
	return nil
}

// onActive reports whether st may run durable events: always, unless the
// consumer follows the active revision and st is not of it.
func (w *Worker) onActive(st *runState) bool {
	if !w.durable.cfg.FollowActive {
		return true
	}
	return st != nil && st.rev != 0 && st.rev == w.active.Load()
}

// SetActive tells the worker the fleet's active bundle revision. With
// [DurableConfig.FollowActive] the worker takes durable events only while
// the functions it serves are of that revision: a worker that is loading
// it, or refused it, leaves them to the rest of the fleet. Without durable
// delivery or FollowActive it does nothing.
func (w *Worker) SetActive(ctx context.Context, rev uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active.Swap(rev) == rev || w.durable == nil || !w.durable.cfg.FollowActive || !w.started || w.stopped.Load() {
		return nil
	}
	return w.updateConsumer(ctx, w.state.Load().set)
}

// onDurable runs a JetStream message here, on the consumer's goroutine,
// when its functions are known to be fast (inline.go), or else hands it to
// a dispatcher. After Stop began, it asks for a redelivery at once, so
// another worker takes the event.
func (w *Worker) onDurable(m jetstream.Msg) {
	if st, entries, ok := w.inlineDurable(m); ok {
		w.runInline(m, st, entries)
		return
	}
	if !w.submit(job{js: m}) {
		_ = m.Nak()
	}
}

// handleDurable runs the functions of a durable event and acks it when all
// succeeded; a failure is redelivered after a backoff, and after MaxDeliver
// attempts dead-lettered.
func (w *Worker) handleDurable(ctx context.Context, m jetstream.Msg) {
	delivered, streamSeq, ok := ackInfo(m.Reply())
	if !ok {
		_, err := m.Metadata() // says why
		w.log.Warn("durable message without metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	// nats.go gives each message its own data, and the event shares it,
	// unless this attempt may end in a dead letter: that holds the event as
	// it came, and a function may change a raw field (its Input) in place.
	maxDeliver := w.durable.cfg.MaxDeliver
	shared := maxDeliver <= 0 || int(delivered) < maxDeliver
	in := inbound{subject: m.Subject(), data: m.Data(), header: m.Headers(), shared: shared, framed: true, span: w.eventSpan(ctx)}
	if !w.parse(&in) {
		_ = m.TermWithReason("invalid subject")
		return
	}
	subj := in.subj
	if delivered > 1 {
		w.metrics.Redeliveries.WithLabelValues(subj.Type.Name).Inc()
	}
	hdr := in.header
	in.only = hdr.Get(HeaderSchedule)
	tick := in.only != "" // a scheduler tick
	if !tick {
		in.only = hdr.Get(HeaderReplayFunction)
	}
	step := w.admit(&in, nil)
	if step != looped && !w.onActive(in.st) {
		// Switching revisions: a worker on the active one runs it.
		_ = m.NakWithDelay(switchRedelivery)
		return
	}
	switch step {
	case looped, unmatched:
		_ = m.Ack()
		return
	case invalid:
		span := w.startSettle(ctx, "term", nil)
		endSpan(span, m.TermWithReason("invalid event"))
		return
	}
	st, entries, ev := in.st, in.entries, in.ev
	if !bytes.Contains(m.Data(), []byte(`"id"`)) && cloudEventMode(hdr) == notCloudEvent {
		// The publisher gave no id (a CloudEvent always has one): use one
		// that every delivery of this stream message shares, so
		// done-records and loop flags carry over.
		if id := hdr.Get(subjects.HeaderMsgID); id != "" {
			ev.ID = id
		} else {
			ev.ID = w.scheme.EventStream() + "." + strconv.FormatUint(streamSeq, 10)
		}
	}
	d := w.durable
	attempts := int(delivered)
	if d.cfg.MaxDeliver > 0 && attempts > d.cfg.MaxDeliver {
		// The last attempt ended without an outcome: its dead letter could
		// not be stored (its reason was kept), or its worker was lost.
		ref, reason := entries[0].Ref, "attempts exhausted (the worker of the last attempt was lost)"
		r, why, kept := w.keptReason(ev.ID)
		if kept {
			ref, reason = r, why
		}
		if w.deadLetter(m, subj, ev.ID, ref, reason, attempts-1) && kept {
			w.dropReason(ev.ID)
		}
		return
	}
	w.progress.add(m)
	defer w.progress.done(m)

	// The done-records of a replay are its own: keyed by the event id, a
	// replay would skip the functions its original ran to the end.
	doneID := ev.ID
	if hdr.Get(HeaderReplay) != "" {
		if mid := hdr.Get(subjects.HeaderMsgID); mid != "" && mid != ev.ID {
			doneID = mid
		}
	}
	var skip map[string]bool
	if attempts > 1 && len(entries) > 1 {
		skip = w.doneFunctions(ctx, doneID, entries)
	}
	var failed *matcher.Entry
	var ferr error
	var succeeded []string
	fr := in.frame // the first call's frame, allocated with the event
	for _, e := range entries {
		if skip[e.Ref] {
			continue
		}
		if tick {
			w.metrics.ScheduleFires.WithLabelValues(e.Ref).Inc()
		}
		_, _, _, err := w.callIn(ctx, fr, st, e, ev, attempts)
		fr = nil // a frame serves one call
		if err != nil {
			if failed == nil {
				failed, ferr = e, err
			}
			continue
		}
		if len(entries) > 1 { // read only to mark the done ones of several
			succeeded = append(succeeded, e.Ref)
		}
	}
	if failed == nil {
		span := w.startSettle(ctx, "ack", nil)
		err := m.Ack()
		endSpan(span, err)
		if err != nil {
			w.log.Warn("ack", "subject", m.Subject(), "event_id", ev.ID, "err", err)
		}
		return
	}
	if len(entries) > 1 {
		w.markDone(ctx, doneID, succeeded)
	}
	if d.cfg.MaxDeliver > 0 && attempts >= d.cfg.MaxDeliver {
		w.deadLetter(m, subj, ev.ID, failed.Ref, ferr.Error(), attempts)
		return
	}
	delay := d.cfg.Backoff[min(attempts-1, len(d.cfg.Backoff)-1)]
	span := w.startSettle(ctx, "nak", nil)
	err := m.NakWithDelay(delay)
	endSpan(span, err)
	if err != nil {
		w.log.Warn("nak", "subject", m.Subject(), "event_id", ev.ID, "err", err)
	}
}

// ackInfo reads the delivery count and the stream sequence of a JetStream
// message from its reply subject, as the message's Metadata does (the same
// checks, the same numbers; FuzzAckInfo holds them together) without its
// allocations. ok is false where Metadata fails. The two forms:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>[.<token>...]
func ackInfo(reply string) (delivered, streamSeq uint64, ok bool) {
	const prefix = "$JS.ACK."
	tokens := strings.Count(reply, ".") + 1
	if tokens < 9 || (tokens > 9 && tokens < 11) || !strings.HasPrefix(reply, prefix) {
		return 0, 0, false
	}
	skip := 2 // stream, consumer
	if tokens > 9 {
		skip = 4 // domain, account hash, stream, consumer
	}
	rest := reply[len(prefix):]
	for range skip {
		_, rest, _ = strings.Cut(rest, ".")
	}
	d, rest, _ := strings.Cut(rest, ".")
	seq, _, _ := strings.Cut(rest, ".")
	return ackNum(d), ackNum(seq), true
}

// ackNum is a number of an ack subject as nats.go reads it: 0 when it is
// empty or holds anything but the digits 0-9 (overflow is not detected).
func ackNum(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func onlyRef(entries []*matcher.Entry, ref string) []*matcher.Entry {
	for _, e := range entries {
		if e.Ref == ref {
			return []*matcher.Entry{e}
		}
	}
	return nil
}

func doneKey(id, ref string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id)) + "." + base64.RawURLEncoding.EncodeToString([]byte(ref))
}

// doneFunctions reads which entries already succeeded for event id.
func (w *Worker) doneFunctions(ctx context.Context, id string, entries []*matcher.Entry) map[string]bool {
	done := map[string]bool{}
	for _, e := range entries {
		if _, err := w.durable.done.Get(ctx, doneKey(id, e.Ref)); err == nil {
			done[e.Ref] = true
		}
	}
	return done
}

// markDone records functions that succeeded for an event that will be
// redelivered, so that they are skipped then.
func (w *Worker) markDone(ctx context.Context, id string, refs []string) {
	for _, ref := range refs {
		if _, err := w.durable.done.Put(ctx, doneKey(id, ref), nil); err != nil {
			w.log.Warn("record done function", "function", ref, "event_id", id, "err", err)
		}
	}
}

// maxDeadLetterReason bounds the Trigger-Error of a dead letter; when the
// event leaves too little room beside the headers, the reason is cut to
// maxQuotedText before the headers copied from the event are left out.
const maxDeadLetterReason = 1024

// deadLetter moves an event to the dead-letter stream with the reason, then
// acks it so that it stops blocking. The reason, the function, the original
// Nats-Msg-Id and stream sequence are headers, so they are kept whatever
// the event's size: an event too large to fit the max payload beside them is
// stored cut (Trigger-Body-Truncated; see fitDeadLetter), counted and
// logged. If the dead letter cannot be stored the event is redelivered
// instead, nothing is lost, and the reason is kept in the done bucket for
// the delivery that stores it (see keptReason). It reports whether the dead
// letter was stored.
func (w *Worker) deadLetter(m jetstream.Msg, subj subjects.Subject, id, ref, reason string, attempts int) bool {
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	dl := w.deadLetterMsg(m, subj, id, ref, reason, attempts, seq)
	truncated := fitDeadLetter(dl, reason, w.nc.MaxPayload())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := w.durable.js.PublishMsg(ctx, dl)
	if err != nil && !truncated && tooLargeForStream(err) {
		// A limit smaller than the connection's (the stream's or the
		// account's): keep the headers, leave the event out.
		dl.Header.Set(HeaderBodyTruncated, strconv.Itoa(len(dl.Data)))
		dl.Data, truncated = nil, true
		_, err = w.durable.js.PublishMsg(ctx, dl)
	}
	if err != nil {
		w.log.Error("dead letter not stored, event will be redelivered", "subject", m.Subject(), "function", ref,
			"bytes", len(m.Data()), "err", err)
		w.keepReason(id, ref, reason)
		_ = m.NakWithDelay(w.durable.cfg.Backoff[len(w.durable.cfg.Backoff)-1])
		return false
	}
	w.metrics.DeadLetters.WithLabelValues(ref).Inc()
	if truncated {
		w.metrics.DeadLettersCut.WithLabelValues(ref).Inc()
		w.log.Error("dead letter stored with its event cut: too large for the NATS max payload beside the dead-letter headers",
			"subject", m.Subject(), "function", ref, "event_bytes", len(m.Data()), "kept_bytes", len(dl.Data),
			"max_payload", w.nc.MaxPayload(), "msg_id", dl.Header.Get(HeaderOriginalMsgID), "event_seq", seq)
	}
	w.log.Error("event dead-lettered", "subject", m.Subject(), "function", ref, "attempts", attempts, "err", reason)
	if err := m.Ack(); err != nil {
		w.log.Warn("ack dead letter", "subject", m.Subject(), "err", err)
	}
	return true
}

// keepReason records why event id is dead-lettered, for the delivery that
// stores the dead letter after this one could not.
func (w *Worker) keepReason(id, ref, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	val := ref + "\n" + cutText(reason, maxDeadLetterReason)
	if _, err := w.durable.done.Put(ctx, reasonKey(id), []byte(val)); err != nil {
		w.log.Warn("record dead-letter reason", "function", ref, "event_id", id, "err", err)
	}
}

// keptReason returns the function and reason keepReason recorded for
// event id.
func (w *Worker) keptReason(id string) (ref, reason string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := w.durable.done.Get(ctx, reasonKey(id))
	if err != nil {
		return "", "", false
	}
	ref, reason, ok = strings.Cut(string(e.Value()), "\n")
	return ref, reason, ok
}

// dropReason deletes the reason keepReason recorded for event id, once its
// dead letter is stored.
func (w *Worker) dropReason(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.durable.done.Delete(ctx, reasonKey(id)); err != nil {
		w.log.Warn("delete dead-letter reason", "event_id", id, "err", err)
	}
}

// reasonKey is the done-bucket key of an event's dead-letter reason; the
// three tokens keep it apart from the doneKey ones.
func reasonKey(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id)) + ".dlq.reason"
}

// deadLetterMsg builds the dead letter of m: its event and headers (but
// the JetStream ones) with the dead-letter headers; id is the event's id,
// kept when the event came without a Nats-Msg-Id.
func (w *Worker) deadLetterMsg(m jetstream.Msg, subj subjects.Subject, id, ref, reason string, attempts int, seq uint64) *nats.Msg {
	dl := nats.NewMsg(w.scheme.DeadLetterSubject(subj.Type.Name, subj.Option))
	dl.Data = m.Data()
	hdr := m.Headers()
	for k, v := range hdr {
		if k == subjects.HeaderMsgID || k == "Nats-Expected-Stream" {
			continue
		}
		dl.Header[k] = v
	}
	dl.Header.Set(HeaderFailedFunction, ref)
	dl.Header.Set(HeaderError, cutText(reason, maxDeadLetterReason))
	dl.Header.Set(HeaderAttempts, strconv.Itoa(attempts))
	dl.Header.Set(HeaderSubject, m.Subject())
	dl.Header.Set(HeaderFailedAt, strconv.FormatInt(time.Now().UnixMilli(), 10))
	if mid := hdr.Get(subjects.HeaderMsgID); mid != "" {
		id = mid
	}
	if id != "" {
		dl.Header.Set(HeaderOriginalMsgID, id)
	}
	if seq > 0 {
		dl.Header.Set(HeaderEventSeq, strconv.FormatUint(seq, 10))
		// The id makes a second dead letter of the same stream message (its
		// ack lost after the first was stored) a duplicate the stream drops.
		dl.Header.Set(subjects.HeaderMsgID, "dlq."+strconv.FormatUint(seq, 10))
	}
	return dl
}

// fitDeadLetter makes dl fit limit (<= 0: unknown, nothing done) and
// reports whether its event was cut. What gives way, in order, until it
// fits: the reason (cut to maxQuotedText), the headers copied from the
// event (named in Trigger-Headers-Dropped); then, when even that is not
// enough, the event itself, cut to the room the full headers leave and
// marked with Trigger-Body-Truncated (the reason and copied headers are cut
// again only if the headers alone are too large).
func fitDeadLetter(dl *nats.Msg, reason string, limit int64) bool {
	if limit <= 0 || msgSize(dl) <= limit {
		return false
	}
	full := maps.Clone(dl.Header)
	dl.Header.Set(HeaderError, cutText(reason, maxQuotedText))
	if msgSize(dl) <= limit {
		return false
	}
	dropCopiedHeaders(dl.Header)
	if msgSize(dl) <= limit {
		return false
	}
	body := dl.Data
	dl.Header = full
	dl.Header.Set(HeaderBodyTruncated, strconv.Itoa(len(body)))
	if headerSize(dl.Header) > limit {
		dl.Header.Set(HeaderError, cutText(reason, maxQuotedText))
	}
	if headerSize(dl.Header) > limit {
		dropCopiedHeaders(dl.Header)
	}
	dl.Data = body[:min(max(limit-headerSize(dl.Header), 0), int64(len(body)))]
	return true
}

// dropCopiedHeaders deletes the headers of h that are not a dead letter's
// own and names them in Trigger-Headers-Dropped.
func dropCopiedHeaders(h nats.Header) {
	var dropped []string
	for k := range h {
		if !slices.Contains(deadLetterHeaders, k) {
			dropped = append(dropped, k)
			delete(h, k)
		}
	}
	slices.Sort(dropped)
	h.Set(HeaderHeadersDropped, cutText(strings.Join(dropped, ","), maxQuotedText))
}

// deadLetterHeaders are the headers a dead letter keeps when all others
// must go.
var deadLetterHeaders = []string{
	HeaderFailedFunction, HeaderError, HeaderAttempts, HeaderSubject, HeaderFailedAt,
	HeaderOriginalMsgID, HeaderEventSeq, HeaderBodyTruncated, HeaderHeadersDropped, subjects.HeaderMsgID,
}

// msgSize is the size of m's headers and data, as the max payload counts it.
func msgSize(m *nats.Msg) int64 { return headerSize(m.Header) + int64(len(m.Data)) }

// headerSize is an upper bound of the size of h on the wire (NATS/1.0
// line, "Key: value" lines, blank line); nats.go trims values, never
// lengthens them.
func headerSize(h nats.Header) int64 {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return int64(n)
}

// tooLargeForStream reports whether a publish failed for the message's size.
func tooLargeForStream(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum)
}
