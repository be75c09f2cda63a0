package handlers_test

import (
	"context"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestCallContextInit: a CallContext held in a caller's own struct gives
// the same context as WithCall: the call, and the origin under it for the
// publisher SDK (the stamp when there is one).
func TestCallContextInit(t *testing.T) {
	var frame struct {
		ctx  handlers.CallContext
		tail int
	}
	stamp := func(subject string, _ []byte) string { return "fn/1/" + subject }
	ctx := frame.ctx.Init(context.Background(), handlers.Call{Ref: "fn", Origin: "fn/1", Stamp: stamp, Attempt: 2})
	c, ok := handlers.CallFrom(ctx)
	if !ok || c.Ref != "fn" || c.Origin != "fn/1" || c.Attempt != 2 {
		t.Fatalf("CallFrom = %+v, %v", c, ok)
	}
	if v, ok := event.OriginFrom(ctx); !ok || v != "fn/1" {
		t.Errorf("OriginFrom = %q, %v", v, ok)
	}
	if v, ok := event.OriginFor(ctx, "a.b", nil); !ok || v != "fn/1/a.b" {
		t.Errorf("OriginFor = %q, %v", v, ok)
	}
	// Without an origin there is none under the call.
	var bare handlers.CallContext
	ctx = bare.Init(context.Background(), handlers.Call{Ref: "fn"})
	if _, ok := event.OriginFrom(ctx); ok {
		t.Error("an origin without one in the call")
	}
	var o event.OriginContext
	if v, ok := event.OriginFrom(o.Init(context.Background(), "x/2", nil)); !ok || v != "x/2" {
		t.Errorf("OriginContext: %q, %v", v, ok)
	}
}
