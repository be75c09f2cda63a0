package worker

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// inbound is one event on its way in, from a core subscription (PRE and
// POST) or the durable consumer. [Worker.parse] and [Worker.admit] are the
// steps every event takes; each counts and logs the events it stops, and the
// caller only answers (a PRE reply, a durable ack or term).
type inbound struct {
	subject string
	data    []byte
	header  nats.Header
	only    string     // a scheduler tick: run only the function of this ref
	shared  bool       // nothing reads data after the functions: the event may share it
	framed  bool       // a core event (POST or PRE): decode allocates its first call's frame with it (frame)
	start   time.Time  // when a core message was taken up (a PRE decision's duration)
	span    trace.Span // the event's span; nil when the worker does not trace

	subj    subjects.Subject // set by parse
	st      *runState        // set by admit: the functions, and those that match
	entries []*matcher.Entry
	ev      *event.Event // set by admit
	frame   *callFrame   // set by decode when framed (and shared, not a CloudEvent); else nil
	err     error        // why the subject or the event is invalid
}

// step is where admit stopped an event, or admitted for it to run.
type step int

const (
	admitted  step = iota
	looped         // it carries a Trigger-Origin to honour; counted dropped
	gated          // the caller's gate stopped it, and answered
	unmatched      // no function runs for it
	invalid        // it does not decode; counted dropped and logged, err says why
)

// parse reads the subject of in and counts the event received. A subject
// that does not parse is counted received with the option "other" and
// dropped invalid, and logged; parse then returns false with in.err set.
// Subscriptions only cover catalogue subjects, so such an event was
// published with a bad option (e.g. ANY on a type with options).
func (w *Worker) parse(in *inbound) bool {
	if seen, ok := w.parsed.Get(in.subject); ok {
		in.subj = seen.subj
		seen.received.Inc()
		return true
	}
	subj, err := w.scheme.Parse(in.subject)
	if err != nil {
		in.err = err
		if t, ok := typeOf(w.scheme, in.subject); ok {
			w.metrics.receivedCounter(t, otherOption).Inc()
			w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonInvalid).Inc()
		}
		w.log.Warn("invalid event subject", "subject", in.subject, "err", err)
		return false
	}
	in.subj = subj
	received := w.metrics.receivedCounter(subj.Type, subj.Option)
	received.Inc()
	if subj.Type.Known(subj.Option) {
		w.parsed.GetOrAdd(strings.Clone(in.subject), func() parsedSubject {
			return parsedSubject{subj: subj, received: received}
		})
	}
	return true
}

// parsedSubject is what parse remembers of a subject it parsed (the
// Worker's parsed, keyed by the subject): the next event on it costs a map
// lookup where parse cuts the subject, looks up its type and option, and
// then the counter. Only subjects whose option is a catalogue value are
// kept (not the other values of an open option set), so it holds at most
// one entry a catalogue subject.
type parsedSubject struct {
	subj     subjects.Subject
	received prometheus.Counter
}

// admit takes a parsed event the rest of the way in, in order: the loop
// guard, gate (the caller's own check, which answers what it stops; nil for
// none), matching (only in.only for a tick) and decoding. It returns where
// the event stopped, or admitted with in.st, in.entries and in.ev set.
func (w *Worker) admit(in *inbound, gate func() bool) step {
	t := in.subj.Type
	if w.loopedHeader(in.subject, in.data, in.header, t) {
		w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonTriggerOriginated).Inc()
		return looped
	}
	if gate != nil && !gate() {
		return gated
	}
	in.st = w.state.Load()
	in.entries = in.st.set.Match(t.Name, in.subj.Option)
	if in.only != "" {
		in.entries = onlyRef(in.entries, in.only)
	}
	if in.span != nil {
		traceMatch(in)
	}
	if len(in.entries) == 0 {
		return unmatched
	}
	ev, err := w.decode(in) // the plain event, or a CloudEvent (cloudevent.go)
	if in.span != nil {
		traceDecode(in, ev, err)
	}
	if err != nil {
		in.err = err
		w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonInvalid).Inc()
		w.log.Warn("invalid event dropped", "subject", in.subject, "err", err)
		return invalid
	}
	in.ev = ev
	return admitted
}
