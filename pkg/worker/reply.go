package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstrace"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Bounds of the texts the worker puts in a decision or a dead letter.
const (
	// maxReplyText bounds a message the worker writes itself from outside
	// text (a bad request's reason, a bad header value).
	maxReplyText = 1024
	// maxQuotedText bounds a denial's message quoted in a refusal that
	// replaces it, and each function's error text kept there.
	maxQuotedText = 256
	// maxRefusalID bounds the id of a refusal when the full one does not fit.
	maxRefusalID = 128
)

// reply sends a decision on a request taken up at start; t (nil when
// unknown) labels the decision metrics. Once it is sent, the decision goes
// to the decision log (see decisionlog.go), off the caller's path.
// Every PRE request gets an answer: a decision that cannot be encoded, or
// whose encoding is larger than the connection's max payload (checked here,
// or reported by the connection), is replaced by a refusal that fits.
func (w *Worker) reply(ctx context.Context, msg *nats.Msg, start time.Time, d *event.Decision, t *subjects.TriggerType) {
	buf := replyBuffer()
	defer putReplyBuffer(buf)
	data, err := d.AppendEncode((*buf)[:0])
	if err == nil {
		*buf = data
	} else {
		w.log.Error("decision cannot be encoded, refusing instead", "subject", msg.Subject, "event_id", d.ID, "err", err)
		d = &event.Decision{ID: d.ID, Code: event.CodeHandlerError,
			Message:   cutText("the decision could not be encoded: "+err.Error(), maxReplyText),
			Functions: []event.FunctionResult{}}
		data, _ = d.Encode() // strings only: encodes
	}
	// The decision is counted before it is sent, so that a caller that has
	// its decision finds it counted: the refusal that replaces one larger
	// than the max payload is known first.
	if limit := w.nc.MaxPayload(); limit > 0 && int64(len(data)) > limit {
		d, data = w.refuseTooLarge(msg, d, t, len(data), limit)
	}
	if t != nil {
		w.metrics.preDecision(t, d.Allowed).Inc()
	}
	span := w.startSettle(ctx, "reply", d)
	err = msg.Respond(data)
	if errors.Is(err, nats.ErrMaxPayload) && d.Code != event.CodeDecisionTooLarge {
		// The limit shrank after it was read (a reconnect to a server with
		// a smaller one): nothing was sent, so the refusal goes instead.
		d, data = w.refuseTooLarge(msg, d, t, len(data), w.nc.MaxPayload())
		if span != nil {
			span.SetAttributes(natstrace.AttrAllowed.Bool(d.Allowed), natstrace.AttrCode.String(d.Code))
		}
		err = msg.Respond(data)
	}
	endSpan(span, err)
	if err != nil {
		w.log.Warn("reply to PRE request", "subject", msg.Subject, "event_id", d.ID, "code", d.Code, "bytes", len(data), "err", err)
	}
	if w.dlog != nil {
		w.dlog.add(msg, start, d)
	}
}

// replyBuffers holds the buffers decisions are encoded in: a reply's
// encoding is dead once msg.Respond returns (the connection copies it into
// its own buffer), so a PRE request allocates none.
var replyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledReply bounds a buffer kept in replyBuffers: the encoding of a
// large decision (one that returns a large input) is not kept.
const maxPooledReply = 16 << 10

func replyBuffer() *[]byte { return replyBuffers.Get().(*[]byte) }

func putReplyBuffer(b *[]byte) {
	if cap(*b) <= maxPooledReply {
		replyBuffers.Put(b)
	}
}

// refuseTooLarge counts and logs a decision of size bytes that does not fit
// the max payload limit, and returns the refusal that replaces it, with its
// encoding: the richest of a few forms that fits (see tooLargeRefusals).
func (w *Worker) refuseTooLarge(msg *nats.Msg, d *event.Decision, t *subjects.TriggerType, size int, limit int64) (*event.Decision, []byte) {
	if t != nil {
		w.metrics.PreTooLarge.WithLabelValues(t.Name).Inc()
	}
	w.log.Error("PRE decision larger than the NATS max payload, refused instead",
		"subject", msg.Subject, "event_id", d.ID, "allowed", d.Allowed, "code", d.Code, "function", d.Function,
		"bytes", size, "max_payload", limit, "input_bytes", len(d.Input))
	var last *event.Decision
	var data []byte
	for _, r := range tooLargeRefusals(d, size, limit) {
		b, err := r.Encode()
		if err != nil {
			continue
		}
		last, data = r, b
		if limit <= 0 || int64(len(b)) <= limit {
			break
		}
	}
	return last, data
}

// tooLargeRefusals returns the refusals that may replace d, richest first:
// with every function's outcome (error texts cut), then without them, then
// with the id cut, then the bare code.
func tooLargeRefusals(d *event.Decision, size int, limit int64) []*event.Decision {
	msg := fmt.Sprintf("the decision is %d bytes, larger than the NATS max payload of %d bytes", size, limit)
	if d.Modified {
		msg += fmt.Sprintf(" (the input the functions returned is %d bytes)", len(d.Input))
	}
	if !d.Allowed {
		msg += "; it refused the request"
		if d.Code != "" {
			msg += " with " + cutText(d.Code, maxQuotedText)
		}
		if d.Message != "" {
			msg += ": " + cutText(d.Message, maxQuotedText)
		}
	}
	full := &event.Decision{ID: d.ID, Code: event.CodeDecisionTooLarge, Message: msg,
		Function: cutText(d.Function, maxQuotedText), Functions: make([]event.FunctionResult, len(d.Functions))}
	for i, f := range d.Functions {
		f.Ref, f.Error = cutText(f.Ref, maxQuotedText), cutText(f.Error, maxQuotedText)
		full.Functions[i] = f
	}
	bare := *full
	bare.Functions = []event.FunctionResult{}
	shortID := bare
	shortID.ID, shortID.Function = cutText(d.ID, maxRefusalID), cutText(d.Function, maxRefusalID)
	minimal := &event.Decision{Code: event.CodeDecisionTooLarge, Functions: []event.FunctionResult{}}
	return []*event.Decision{full, &bare, &shortID, minimal}
}

// cutText returns s cut to at most n bytes, on a character boundary, and
// marked with "…" when it was cut.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := max(n-len(mark), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
