package webhook

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"

	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// injectTrace writes the trace context of the call (W3C traceparent and
// tracestate with the worker's default propagator) into the request
// headers, so that the receiver continues the trace under the function's
// span. A worker that does not trace gives no propagator: nothing is
// written.
func injectTrace(ctx context.Context, h http.Header) {
	if c, ok := handlers.CallFrom(ctx); ok && c.Propagator != nil {
		c.Propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
