package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// How much of a request's input a decision log record keeps, the values of
// [DecisionLogConfig.Input].
const (
	InputNone = "none" // nothing
	InputHash = "hash" // its SHA-256, hex
	InputFull = "full" // the request's event itself
)

// Defaults of the decision log.
const (
	DefaultDecisionLogAge   = 7 * 24 * time.Hour
	DefaultDecisionLogQueue = 4096
)

// Reasons a decision log record was not written, the values of the reason
// label of trigger_decision_log_failures_total.
const (
	DecisionLogQueueFull = "queue_full" // the buffer of the publisher was full
	DecisionLogPublish   = "publish"    // JetStream did not store it
)

// DecisionLogConfig turns on the decision log: every PRE decision, once
// answered, is published to the stream <PREFIX>_DECISIONS on
// <prefix>.decisions.<TYPE>.<OPTION> as a [DecisionRecord], a JSON line (a
// message holds one or more, see decisionLog). It needs
// JetStream. A record that cannot be written is counted and dropped; the
// decision is never delayed or changed.
type DecisionLogConfig struct {
	// DeniedOnly logs only refusals.
	DeniedOnly bool
	// SampleAllowed is the share of allowed decisions logged, from 0 to 1;
	// 0 means 1 (all). Refusals are always logged.
	SampleAllowed float64
	// Input is how much of the request's input a record keeps: InputNone,
	// InputHash or InputFull; "" means InputHash.
	Input string
	// MaxAge and MaxBytes are the stream's limits (the oldest records go
	// first); 0 means DefaultDecisionLogAge and no byte limit.
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas of the stream; 0 means 1.
	Replicas int
	// Queue bounds the records buffered between two publishes (every
	// 50ms); 0 means DefaultDecisionLogQueue. A record that finds the buffer
	// full is dropped, counted.
	Queue int
}

func (c *DecisionLogConfig) setDefaults() error {
	switch c.Input {
	case "":
		c.Input = InputHash
	case InputNone, InputHash, InputFull:
	default:
		return fmt.Errorf("worker: decision log input %q is not none, hash or full", c.Input)
	}
	if c.SampleAllowed < 0 || c.SampleAllowed > 1 {
		return fmt.Errorf("worker: decision log sample_allowed %v is not between 0 and 1", c.SampleAllowed)
	}
	if c.SampleAllowed == 0 {
		c.SampleAllowed = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultDecisionLogAge
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Queue <= 0 {
		c.Queue = DefaultDecisionLogQueue
	}
	return nil
}

// DecisionRecord is one PRE decision in the decision log, as JSON.
type DecisionRecord struct {
	// ID is the event id (the request's Nats-Msg-Id when the decision has
	// none).
	ID      string `json:"id"`
	Subject string `json:"subject"`
	// At is when the decision was answered.
	At        time.Time              `json:"at"`
	Allowed   bool                   `json:"allowed"`
	Code      string                 `json:"code,omitempty"`
	Message   string                 `json:"message,omitempty"`
	Function  string                 `json:"function,omitempty"`
	Functions []event.FunctionResult `json:"functions"`
	// Revision is the bundle revision whose functions decided; 0 when none.
	Revision uint64 `json:"revision,omitempty"`
	// Worker is the instance name of the worker that decided.
	Worker string `json:"worker"`
	// Ms is how long the worker took, from taking the request up to the
	// answer, in milliseconds.
	Ms float64 `json:"ms"`
	// Deadline is the caller's deadline (the earlier of the event's deadline
	// and Trigger-Deadline), if it gave one.
	Deadline *time.Time `json:"deadline,omitempty"`
	// InputSHA256 is the SHA-256 of the request's event (input hash or full).
	InputSHA256 string `json:"input_sha256,omitempty"`
	// Input is the request's event (input full), when it is JSON.
	Input json.RawMessage `json:"input,omitempty"`
}

// decisionLog publishes decision records in batches, in its own
// goroutine, with asynchronous JetStream publishes. A decision only appends
// to a bounded buffer (no wake-up, no I/O); every decisionFlush the
// publisher takes the buffer and sends its records, those of one subject
// together, as JSON lines in as few messages as fit.
type decisionLog struct {
	cfg      DecisionLogConfig
	js       jetstream.JetStream
	scheme   subjects.Scheme
	instance string
	maxMsg   int // bytes of records in one message
	failures func(reason string, n int)

	mu  sync.Mutex
	buf []decisionItem

	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	running atomic.Bool
}

// decisionFlush is how often the decision log publishes what it buffered.
const decisionFlush = 50 * time.Millisecond

// maxDecisionBatch bounds the bytes of records the decision log puts in one
// message (less when the server's max payload is smaller).
const maxDecisionBatch = 256 << 10

type decisionItem struct {
	msg   *nats.Msg
	d     event.Decision
	start time.Time
	at    time.Time
}

// newDecisionLog returns the decision log of w; nil when it is off.
func (w *Worker) newDecisionLog() (*decisionLog, error) {
	if w.cfg.DecisionLog == nil {
		return nil, nil
	}
	l := &decisionLog{cfg: *w.cfg.DecisionLog, scheme: w.scheme, instance: w.cfg.Instance}
	if err := l.cfg.setDefaults(); err != nil {
		return nil, err
	}
	var last atomic.Int64
	l.failures = func(reason string, n int) {
		w.metrics.DecisionLogFailures.WithLabelValues(reason).Add(float64(n))
		now := time.Now().UnixNano()
		if prev := last.Load(); now-prev >= int64(time.Minute) && last.CompareAndSwap(prev, now) {
			w.log.Warn("decision log records not written (logged at most once a minute; see trigger_decision_log_failures_total)", "reason", reason, "records", n, "stream", w.scheme.DecisionStream())
		}
	}
	js, err := jetstream.New(w.nc,
		jetstream.WithPublishAsyncMaxPending(256),
		jetstream.WithPublishAsyncTimeout(5*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			l.failures(DecisionLogPublish, bytes.Count(m.Data, []byte{'\n'}))
		}))
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	l.js = js
	l.maxMsg = maxDecisionBatch
	if mp := w.nc.MaxPayload(); mp > 0 && mp/2 < int64(l.maxMsg) {
		l.maxMsg = int(mp / 2)
	}
	l.stop = make(chan struct{})
	l.stopped = make(chan struct{})
	return l, nil
}

// setup creates or updates the decision stream. A failure is logged by the
// caller: the log is then counted failing, and decisions go on.
func (l *decisionLog) setup(ctx context.Context) error {
	maxBytes := l.cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	_, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        l.scheme.DecisionStream(),
		Description: "triggerbus: the decision log, one record per PRE decision",
		Subjects:    []string{l.scheme.Decisions()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      l.cfg.MaxAge,
		MaxBytes:    maxBytes,
		Replicas:    l.cfg.Replicas,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("worker: stream %s: %w", l.scheme.DecisionStream(), err)
	}
	return nil
}

// add buffers the record of a decision answered to msg, never waiting: a
// full buffer drops it, counted.
func (l *decisionLog) add(msg *nats.Msg, start time.Time, d *event.Decision) {
	if d.Allowed && (l.cfg.DeniedOnly || (l.cfg.SampleAllowed < 1 && rand.Float64() >= l.cfg.SampleAllowed)) {
		return
	}
	it := decisionItem{msg: msg, d: *d, start: start, at: time.Now()}
	l.mu.Lock()
	full := len(l.buf) >= l.cfg.Queue
	if !full {
		l.buf = append(l.buf, it)
	}
	l.mu.Unlock()
	if full {
		l.failures(DecisionLogQueueFull, 1)
	}
}

// start runs the publisher.
func (l *decisionLog) start() {
	l.running.Store(true)
	go l.run()
}

// run publishes the buffered records every decisionFlush until close, then
// what is left.
func (l *decisionLog) run() {
	defer close(l.stopped)
	t := time.NewTicker(decisionFlush)
	defer t.Stop()
	var spare []decisionItem
	for {
		select {
		case <-t.C:
		case <-l.stop:
			l.flush(nil)
			return
		}
		spare = l.flush(spare)
	}
}

// flush publishes the buffered records and returns the emptied buffer it
// took, for the next swap.
func (l *decisionLog) flush(spare []decisionItem) []decisionItem {
	l.mu.Lock()
	items := l.buf
	l.buf = spare[:0]
	l.mu.Unlock()
	if len(items) == 0 {
		return items
	}
	type batch struct {
		data []byte
		n    int
	}
	batches := map[string]*batch{}
	var order []string
	for i := range items {
		it := &items[i]
		line, err := json.Marshal(l.record(it))
		if err != nil {
			l.failures(DecisionLogPublish, 1)
			continue
		}
		subj := l.scheme.Prefix() + ".decisions." + strings.TrimPrefix(it.msg.Subject, l.scheme.Prefix()+".")
		b := batches[subj]
		if b == nil {
			b = &batch{}
			batches[subj] = b
			order = append(order, subj)
		}
		if b.n > 0 && len(b.data)+len(line)+1 > l.maxMsg {
			l.publish(subj, b.data, b.n)
			b.data, b.n = nil, 0
		}
		b.data = append(append(b.data, line...), '\n')
		b.n++
		*it = decisionItem{} // let go of the request
	}
	for _, subj := range order {
		if b := batches[subj]; b.n > 0 {
			l.publish(subj, b.data, b.n)
		}
	}
	return items
}

// close stops the publisher and waits, within ctx, for the records handed
// to JetStream to be acknowledged.
func (l *decisionLog) close(ctx context.Context) {
	l.once.Do(func() { close(l.stop) })
	if !l.running.Load() {
		return
	}
	select {
	case <-l.stopped:
	case <-ctx.Done():
		return
	}
	select {
	case <-l.js.PublishAsyncComplete():
	case <-ctx.Done():
	}
}

// publish sends n records, as JSON lines in data, on subj.
func (l *decisionLog) publish(subj string, data []byte, n int) {
	m := nats.NewMsg(subj)
	m.Data = data
	if _, err := l.js.PublishMsgAsync(m); err != nil {
		l.failures(DecisionLogPublish, n)
	}
}

// requestEvent reads the deadline of the event a request carries (in data
// for a structured CloudEvent) and, when withID, its id, in one pass over
// its body: "" for an id that is not a string, 0 for a deadline that is
// absent or not an integer, both when the body is not a JSON object. The
// id is read only when asked (a decision made before the event was
// decoded): the others have it, and reading it costs allocations.
func requestEvent(msg *nats.Msg, withID bool) (id string, deadline int64) {
	var data json.RawMessage
	if withID {
		var body struct {
			ID       json.RawMessage `json:"id"`
			Deadline json.RawMessage `json:"deadline"`
			Data     json.RawMessage `json:"data"`
		}
		if json.Unmarshal(msg.Data, &body) != nil {
			return "", 0
		}
		_ = json.Unmarshal(body.ID, &id)
		_ = json.Unmarshal(body.Deadline, &deadline)
		data = body.Data
	} else {
		var body struct {
			Deadline int64           `json:"deadline"`
			Data     json.RawMessage `json:"data"`
		}
		// A deadline that is not an integer is a type error, after
		// which the rest of the body is still read.
		var te *json.UnmarshalTypeError
		if err := json.Unmarshal(msg.Data, &body); err != nil && !errors.As(err, &te) {
			return "", 0
		}
		deadline, data = body.Deadline, body.Data
	}
	if cloudEventMode(msg.Header) == ceStructured {
		var ce struct {
			Deadline json.RawMessage `json:"deadline"`
		}
		deadline = 0
		if json.Unmarshal(data, &ce) == nil {
			_ = json.Unmarshal(ce.Deadline, &deadline)
		}
	}
	return id, deadline
}

// record builds the record of a queued decision.
func (l *decisionLog) record(it *decisionItem) *DecisionRecord {
	d, msg := &it.d, it.msg
	r := &DecisionRecord{
		ID: d.ID, Subject: msg.Subject, At: it.at.UTC(),
		Allowed: d.Allowed, Code: d.Code, Message: d.Message, Function: d.Function,
		Functions: d.Functions, Revision: d.Revision, Worker: l.instance,
		Ms: float64(it.at.Sub(it.start).Microseconds()) / 1000,
	}
	if r.Functions == nil {
		r.Functions = []event.FunctionResult{}
	}
	bodyID, bodyDeadline := requestEvent(msg, r.ID == "")
	if r.ID == "" {
		// A decision made before the event was decoded (EXPIRED,
		// TRIGGER_ORIGINATED, NO_TRIGGER, BAD_REQUEST) has the request's
		// Nats-Msg-Id at most, which the Go SDK does not send: the event's
		// own id then, read here off the caller's path.
		r.ID = msg.Header.Get(subjects.HeaderMsgID)
		if r.ID == "" {
			r.ID = bodyID
		}
	}
	if v := msg.Header.Get(subjects.HeaderDeadline); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			t := time.UnixMilli(ms).UTC()
			r.Deadline = &t
		}
	}
	// The event's deadline, as the SDK sends it: the earlier of the two
	// is the one the worker kept (handlePre).
	if bodyDeadline != 0 {
		if t := time.UnixMilli(bodyDeadline).UTC(); r.Deadline == nil || t.Before(*r.Deadline) {
			r.Deadline = &t
		}
	}
	if l.cfg.Input != InputNone {
		sum := sha256.Sum256(msg.Data)
		r.InputSHA256 = hex.EncodeToString(sum[:])
		if l.cfg.Input == InputFull && json.Valid(msg.Data) {
			r.Input = msg.Data
		}
	}
	return r
}
