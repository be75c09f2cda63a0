package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/triggerbus/triggerbus/internal/natstrace"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// DefaultRequestTimeout bounds a request a function makes without a
// timeout or deadline of its own.
const DefaultRequestTimeout = 5 * time.Second

// originBus is the [handlers.Bus] of one function call: every message it
// sends carries the call's Trigger-Origin, stamped for that message (the
// call's value itself when stamp is nil: an unsigned fleet).
type originBus struct {
	nc    *nats.Conn
	value string
	stamp func(subject string, data []byte) string
	prop  propagation.TextMapPropagator // writes the call's trace context; nil when the worker does not trace
}

var _ handlers.Bus = (*originBus)(nil)

func (b *originBus) msg(ctx context.Context, subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	v := b.value
	if b.stamp != nil {
		v = b.stamp(subject, data)
	}
	m.Header.Set(subjects.HeaderOrigin, v)
	if b.prop != nil {
		b.prop.Inject(ctx, natstrace.Header(m.Header))
	}
	return m
}

// callOrigin stamps the messages of one function call.
type callOrigin struct {
	o       *Origin
	ref, id string
}

func (c callOrigin) stamp(subject string, data []byte) string {
	return c.o.Stamp(c.ref, c.id, subject, data)
}

// Publish sends data to subject with the call's Trigger-Origin.
func (b *originBus) Publish(ctx context.Context, subject string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.nc.PublishMsg(b.msg(ctx, subject, data))
}

// Request sends data to subject with the call's Trigger-Origin and waits
// for the reply until timeout or ctx ends.
func (b *originBus) Request(ctx context.Context, subject string, data []byte, timeout time.Duration) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok && timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	reply, err := b.nc.RequestMsgWithContext(ctx, b.msg(ctx, subject, data))
	if err != nil {
		return nil, err
	}
	return reply.Data, nil
}
