package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/cowmap"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Policy is what Decide answers when it cannot get a decision: when workers
// are registered for the subject but none answers, or the request times out.
type Policy int

// The policies.
const (
	// Refuse answers allowed: false (the default): a dead fleet never turns
	// a deny trigger into a silent allow.
	Refuse Policy = iota
	// Allow answers allowed: true.
	Allow
)

// Defaults of [Options].
const (
	DefaultDecideTimeout  = 5 * time.Second
	DefaultPublishRetries = 3
	// DefaultCloudEventsSource is the source of CloudEvents sent by a client
	// whose Options.CloudEventsSource is empty.
	DefaultCloudEventsSource = "/triggerbus/client"
)

// Options configure a [Client]. Zero values mean the defaults.
type Options struct {
	// Prefix is the subject prefix; "" means subjects.DefaultPrefix.
	Prefix string
	// Durable publishes POST events through JetStream with an ack, retrying
	// with the same Nats-Msg-Id so that the stream keeps one copy. When the
	// event stream is full (and refuses new events, the workers' default),
	// Publish returns the stream's error after its retries: the event was
	// not stored.
	Durable bool
	// PublishRetries is how many times a durable publish is retried; 0
	// means DefaultPublishRetries.
	PublishRetries int
	// DecideTimeout bounds Decide when ctx has no deadline; 0 means
	// DefaultDecideTimeout.
	DecideTimeout time.Duration
	// NoWorker is the answer when functions are registered but no worker
	// answers, or when that cannot be known (no JetStream).
	NoWorker Policy
	// OnTimeout is the answer when the request times out.
	OnTimeout Policy
	// NoRegistryWatch turns off the watched copy of the PRE registry: every
	// Decide sends its request. By default the first Decide starts a watch
	// on the registry bucket, and from then on, while the copy is known
	// current, Decide answers NO_TRIGGER at once for a subject with no
	// registration, without a round trip (see the package documentation for
	// the guarantee). Turn it off for a fleet whose workers do not keep the
	// registry.
	NoRegistryWatch bool
	// TracerProvider makes the spans of Publish and Decide (see trace.go);
	// nil means the global one, otel.GetTracerProvider(), which makes none
	// until a program sets it.
	TracerProvider trace.TracerProvider
	// Propagator writes the trace context (W3C traceparent and tracestate)
	// into the headers of each event; nil means the global one,
	// otel.GetTextMapPropagator(), which writes none until a program sets it.
	Propagator propagation.TextMapPropagator
	// CloudEvents sends every event as a binary-mode CloudEvent (the
	// CloudEvents NATS protocol binding): the event is the data, and ce-*
	// headers carry specversion 1.0, id (the event id), source
	// (CloudEventsSource), type (the subject, <prefix>.<TYPE>.<OPTION>), time
	// (the event's timeStamp) and datacontenttype application/json. Workers
	// decide and run it exactly as the plain event.
	CloudEvents bool
	// CloudEventsSource is the CloudEvents source of the events sent with
	// CloudEvents, a URI-reference naming the publisher; "" means
	// DefaultCloudEventsSource.
	CloudEventsSource string
}

// Client publishes trigger events. It is safe for concurrent use; it does
// not own the connection.
type Client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	scheme subjects.Scheme
	opts   Options
	reg    *registryWatch // nil with Options.NoRegistryWatch
	trace  *tracing

	routes cowmap.Map[routeKey, route] // see route
}

// New returns a client that publishes on nc.
func New(nc *nats.Conn, opts Options) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client: nil connection")
	}
	if opts.Prefix == "" {
		opts.Prefix = subjects.DefaultPrefix
	}
	if opts.PublishRetries <= 0 {
		opts.PublishRetries = DefaultPublishRetries
	}
	if opts.DecideTimeout <= 0 {
		opts.DecideTimeout = DefaultDecideTimeout
	}
	if opts.CloudEventsSource == "" {
		opts.CloudEventsSource = DefaultCloudEventsSource
	}
	scheme, err := subjects.NewScheme(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{nc: nc, js: js, scheme: scheme, opts: opts, trace: newTracing(opts)}
	if !opts.NoRegistryWatch {
		c.reg = newRegistryWatch(nc, js, scheme.RegistryBucket())
	}
	return c, nil
}

// Close stops the client's watch of the PRE registry, if one runs; it
// does not close the connection. The watch also ends when the connection
// closes. After Close, Decide sends every request.
func (c *Client) Close() error {
	if c.reg != nil {
		c.reg.stop()
	}
	return nil
}

// RegistryWatched reports whether Decide answers from the watched copy of
// the PRE registry right now: the watch started by the first Decide has
// delivered the registry and runs on a connected connection. When false,
// Decide sends every request.
func (c *Client) RegistryWatched() bool {
	return c.reg != nil && c.reg.isCurrent()
}

// prepare validates the type and option, fills the event's id, timestamp,
// type and option, and builds the message into m; it returns the event's
// id. The caller's m and the event's copy stay on the caller's stack.
func (c *Client) prepare(ctx context.Context, typ, option string, ev *event.Event, pre bool, m *nats.Msg) (string, error) {
	return c.prepareIn(ctx, typ, option, ev, pre, m, nil, 0)
}

// prepareIn is prepare with the event encoded into buf when it is not nil
// (m.Data is then buf, grown as needed), into a buffer of its own when it
// is.
func (c *Client) prepareIn(ctx context.Context, typ, option string, ev *event.Event, pre bool, m *nats.Msg, buf []byte, deadline int64) (string, error) {
	r, err := c.route(typ, option)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	subject := r.subject
	if r.pre != pre {
		if pre {
			return "", fmt.Errorf("client: %s is not a PRE trigger: use Publish", typ)
		}
		return "", fmt.Errorf("client: %s is a PRE trigger: use Decide", typ)
	}
	var e event.Event
	if ev != nil {
		e = *ev
	}
	if e.TriggerType != "" && e.TriggerType != typ {
		return "", fmt.Errorf("client: event triggerType %q is not %q", e.TriggerType, typ)
	}
	if e.TriggerOption != "" && e.TriggerOption != option {
		return "", fmt.Errorf("client: event triggerOption %q is not %q", e.TriggerOption, option)
	}
	e.TriggerType, e.TriggerOption = typ, option
	callerID := e.ID != ""
	if !callerID || e.TimeStamp == 0 {
		// One clock read for the id and the time stamp.
		now := time.Now()
		if !callerID {
			e.ID = event.NewIDAt(now)
		}
		if e.TimeStamp == 0 {
			e.TimeStamp = now.UnixMilli()
		}
	}
	if deadline != 0 && (e.Deadline == 0 || deadline < e.Deadline) {
		e.Deadline = deadline
	}
	var data []byte
	if buf != nil {
		data, err = e.AppendJSON(buf)
	} else {
		data, err = e.Encode()
	}
	if err != nil {
		return "", fmt.Errorf("client: encode event: %w", err)
	}
	m.Subject, m.Data = subject, data
	if !pre && (c.opts.Durable || callerID) {
		// Nats-Msg-Id, JetStream's de-duplication key, goes where the
		// same event may be stored again: a durable publish is retried
		// with it, and a caller that chose the id may publish the event
		// again. A core publish of an id made here is sent once, so the
		// header could de-duplicate nothing; without it the message is
		// a plain PUB, which every hop (SDK, server, worker) handles for
		// a fraction of the cost of a header (docs/benchmarks.md). A PRE
		// request is never stored: Decide gives a decision without an
		// id (a worker that could not read the request) the event's id
		// itself.
		m.Header = nats.Header{}
		m.Header.Set(subjects.HeaderMsgID, e.ID)
	}
	if c.opts.CloudEvents {
		setCloudEvent(msgHeader(m), subject, c.opts.CloudEventsSource, &e)
	}
	if origin, ok := event.OriginFor(ctx, subject, data); ok {
		msgHeader(m).Set(subjects.HeaderOrigin, origin)
	}
	return e.ID, nil
}

// route is where the events of a type and option go: their subject, and
// whether the type is a PRE trigger.
type route struct {
	subject string
	pre     bool
}

// routeKey is a type and option.
type routeKey struct{ typ, option string }

// maxRoutes bounds the routes a client keeps; the subjects of other types
// and options are built on each call.
const maxRoutes = 256

// route returns the route of typ and option, validated. A client keeps the
// routes it has built (a publisher sends few types and options), read
// without a lock and replaced whole when one is added, so that an event
// builds no subject.
func (c *Client) route(typ, option string) (route, error) {
	k := routeKey{typ, option}
	if r, ok := c.routes.Get(k); ok {
		return r, nil
	}
	subject, err := c.scheme.Build(typ, option)
	if err != nil {
		return route{}, err
	}
	t, _ := subjects.Lookup(typ)
	r := route{subject: subject, pre: t.IsPre()}
	c.routes.Add(k, r, maxRoutes)
	return r, nil
}

// msgHeader returns the headers of m, made when m has none.
func msgHeader(m *nats.Msg) nats.Header {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	return m.Header
}

// Publish publishes a POST (or SCHEDULED) event and returns its id. The
// event may be nil. With Options.Durable the stream's ack is awaited and
// the publish retried with the same id; when ctx has a deadline, each
// attempt gets an equal share of the time left.
func (c *Client) Publish(ctx context.Context, typ, option string, ev *event.Event) (id string, err error) {
	var m nats.Msg
	// The event is encoded into a pooled buffer: nats.go copies the
	// message into its own before a publish returns, and nothing else
	// keeps it.
	bp := publishBufs.Get().(*[]byte)
	defer func() {
		if m.Data != nil && cap(m.Data) <= maxPooledBuf {
			*bp = m.Data[:0]
		}
		publishBufs.Put(bp)
	}()
	id, err = c.prepareIn(ctx, typ, option, ev, false, &m, (*bp)[:0], 0)
	if err != nil {
		return "", err
	}
	ctx, span := c.trace.start(ctx, trace.SpanKindProducer, &m, id)
	if !c.opts.Durable {
		if err = c.nc.PublishMsg(&m); err != nil {
			err = fmt.Errorf("client: publish: %w", err)
			id = ""
		}
		endPublish(span, err)
		return id, err
	}
	id, err = c.publishDurable(ctx, m, id)
	endPublish(span, err)
	return id, err
}

// publishBufs holds the buffers Publish encodes events into; one larger
// than maxPooledBuf is left to the collector.
var publishBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBuf = 64 << 10

// publishDurable publishes m (the event id) through JetStream, awaiting the
// stream's ack and retrying with the same Nats-Msg-Id.
func (c *Client) publishDurable(ctx context.Context, msg nats.Msg, id string) (string, error) {
	m := &msg
	var last error
	for attempt := range c.opts.PublishRetries + 1 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("client: publish: %w (last error: %w)", ctx.Err(), last)
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		actx, cancel := attemptContext(ctx, c.opts.PublishRetries+1-attempt)
		_, err := c.js.PublishMsg(actx, m)
		cancel()
		if err != nil {
			last = err
			continue
		}
		return id, nil
	}
	return "", fmt.Errorf("client: publish after %d attempts: %w", c.opts.PublishRetries+1, last)
}

// attemptContext bounds one of the left attempts of a durable publish to
// its share of the time ctx has left, so that an attempt whose ack is lost
// (the server restarted after it stored the event) leaves time for the
// retries. Without a deadline, JetStream's own request timeout bounds each
// attempt.
func attemptContext(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok || left <= 1 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, time.Until(dl)/time.Duration(left))
}

// Decide asks the worker fleet for the decision on a PRE event. The
// deadline of ctx (or Options.DecideTimeout) is sent as the event's
// deadline, unless ev has an earlier one.
// It returns an error only for a bad type, option or event; every other
// outcome is a decision (see [Policy]).
func (c *Client) Decide(ctx context.Context, typ, option string, ev *event.Event) (decision *event.Decision, err error) {
	rq := decideReqs.Get().(*decideReq)
	defer rq.release()
	m := &rq.msg
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.opts.DecideTimeout)
	}
	// The deadline goes in the event (its deadline field), not in a
	// Trigger-Deadline header: a request without headers is a plain PUB,
	// which the SDK, the server and the worker (whose NATS client reads a
	// header block with several allocations) handle for less
	// (docs/benchmarks.md).
	id, err := c.prepareIn(ctx, typ, option, ev, true, m, rq.buf[:0], dl.UnixMilli())
	if err != nil {
		return nil, err
	}
	rq.buf = m.Data
	ctx, span := c.trace.start(ctx, trace.SpanKindClient, m, id)
	defer func() { endDecide(span, decision) }()
	if m.Header.Get(subjects.HeaderOrigin) != "" {
		return &event.Decision{ID: id, Allowed: true, Code: event.CodeTriggerOriginated, Functions: []event.FunctionResult{}}, nil
	}
	if c.reg != nil {
		c.reg.start()
		if known, registered := c.reg.lookup(typ, option); known && !registered {
			return noTrigger(id, typ, option), nil
		}
	}
	for attempt := 0; ; attempt++ {
		reply, err := c.request(ctx, m, dl)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return c.noResponders(ctx, typ, option, id), nil
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return c.policy(c.opts.OnTimeout, id, event.CodeTimeout, "no decision before the deadline"), nil
		case errors.Is(err, nats.ErrMaxPayload):
			// No worker can see a request NATS will not carry: a bad event,
			// refused whatever the policies say.
			return refused(id, event.CodeBadRequest, fmt.Sprintf(
				"the request (an event of %d bytes, and its headers) is larger than the NATS max payload (%d bytes)",
				len(m.Data), c.nc.MaxPayload())), nil
		case err != nil:
			return c.policy(c.opts.NoWorker, id, event.CodeNoWorker, "request failed: "+err.Error()), nil
		}
		d, err := event.DecodeDecisionFor(reply.Data, id)
		if err != nil {
			// Something answered, and not with a decision: refused whatever
			// the policies say, since a reply is not "no worker".
			return refused(id, event.CodeBadReply, "unreadable reply: "+err.Error()), nil
		}
		// A worker that was shutting down asks us to try another one.
		if d.Code == event.CodeShuttingDown && attempt < 3 {
			continue
		}
		if d.ID == "" {
			// A worker answers a request it could not read (or did not
			// decode: EXPIRED, TRIGGER_ORIGINATED, NO_TRIGGER) without the
			// event's id unless the request carried it as Nats-Msg-Id.
			d.ID = id
		}
		return d, nil
	}
}

// decideReq is what a PRE request is built in: the message, its encoded
// event and its headers, used again by later requests. nats.go copies the
// subject, headers and data out of the message before RequestMsg sends it
// and keeps nothing of it while it waits for the reply, so a request gives
// its decideReq back when Decide returns.
type decideReq struct {
	msg nats.Msg
	buf []byte
}

var decideReqs = sync.Pool{New: func() any {
	return &decideReq{buf: make([]byte, 0, 512), msg: nats.Msg{Header: nats.Header{}}}
}}

// release clears r for the next request and puts it back; a buffer larger
// than maxPooledBuf is left to the collector.
func (r *decideReq) release() {
	h := r.msg.Header
	clear(h)
	r.msg = nats.Msg{Header: h}
	if cap(r.buf) > maxPooledBuf {
		r.buf = make([]byte, 0, 512)
	}
	r.buf = r.buf[:0]
	decideReqs.Put(r)
}

// request sends m and waits for its reply until dl, the deadline of ctx
// or the one Decide set. A context that cannot be canceled (no Done
// channel) is waited on with nats.go's pooled timer, without a context and
// timer of its own per request.
func (c *Client) request(ctx context.Context, m *nats.Msg, dl time.Time) (*nats.Msg, error) {
	if ctx.Done() != nil {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl)
			defer cancel()
		}
		return c.nc.RequestMsgWithContext(ctx, m)
	}
	left := time.Until(dl)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	return c.nc.RequestMsg(m, left)
}

// noResponders tells "no trigger registered" from "no worker answering".
func (c *Client) noResponders(ctx context.Context, typ, option, id string) *event.Decision {
	registered, err := c.registered(ctx, typ, option)
	if err != nil {
		return c.policy(c.opts.NoWorker, id, event.CodeNoWorker,
			"no worker answered and the trigger registry cannot be read: "+err.Error())
	}
	if !registered {
		return noTrigger(id, typ, option)
	}
	return c.policy(c.opts.NoWorker, id, event.CodeNoWorker, "trigger functions are registered for "+typ+"."+option+" but no worker answered")
}

// registered reads the workers' registry for typ.option and typ.ANY. A key
// that exists means registered, whatever its value: the value lists the
// registrations by worker instance (pkg/worker registry.go), or, in buckets
// written by earlier workers, the functions alone; a worker deletes a key
// once no instance is left in it. Reading existence only keeps both layouts
// refusing, and needs no permission beyond a direct get of the key.
func (c *Client) registered(ctx context.Context, typ, option string) (bool, error) {
	kv, err := c.js.KeyValue(ctx, c.scheme.RegistryBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// No worker with registry support ever ran here.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, o := range []string{option, subjects.Any} {
		_, err := kv.Get(ctx, subjects.RegistryKey(typ, o))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, err
		}
	}
	return false, nil
}

// noTrigger is the decision for a subject no worker registered.
func noTrigger(id, typ, option string) *event.Decision {
	return &event.Decision{ID: id, Allowed: true, Code: event.CodeNoTrigger, Message: "no trigger function is registered for " + typ + "." + option, Functions: []event.FunctionResult{}}
}

// refused is a refusal the SDK makes itself, whatever the policies.
func refused(id, code, msg string) *event.Decision {
	return &event.Decision{ID: id, Code: code, Message: msg, Functions: []event.FunctionResult{}}
}

func (c *Client) policy(p Policy, id, code, msg string) *event.Decision {
	return &event.Decision{ID: id, Allowed: p == Allow, Code: code, Message: msg, Functions: []event.FunctionResult{}}
}
