package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// modePreRegistry is the PRE mode whose triggerbus worker keeps the PRE
// registry, as trigger-worker does whenever JetStream is on.
const modePreRegistry = "pre-registry"

// The PRE event of the pre-none row: a type and option no worker serves.
const (
	noneType   = "PRE_DELETE"
	noneOption = "DISK"
)

// preNoneScenario is the "PRE no function" row: the p50 of client.Decide
// for a PRE subject no worker serves, once the client's watched copy of the
// registry is current, against the p50 of a raw request-reply answered by
// the raw responder. The middle variant, with the watch off, is Decide as it
// was before the watch: a request that finds no responders, then a read of
// the registry.
func preNoneScenario() *scenario {
	return &scenario{name: "pre-none", title: "PRE no function", pre: true,
		variants: []variant{
			{name: sideRaw, side: sideRaw, mode: modePre, drive: preDrive(1)},
			{name: "no watch", side: sideOurs, mode: modePreRegistry, drive: preNoneDrive(false)},
			{name: sideOurs, side: sideOurs, mode: modePreRegistry, drive: preNoneDrive(true)},
		},
		target: "p50 < 0.2x raw request-reply", met: func(r *ratios) bool { return r.P50.Median < 0.2 }}
}

// preNoneDrive measures Decide for the unserved subject, sequentially; with
// watch, after the client's registry watch has delivered the registry
// written by the run's worker.
func preNoneDrive(watch bool) driveFunc {
	return func(ctx context.Context, b *bench, r *runEnv) (*measured, error) {
		return b.drivePreNone(ctx, r, watch)
	}
}

func (b *bench) drivePreNone(ctx context.Context, r *runEnv, watch bool) (*measured, error) {
	c, err := client.New(b.nc, client.Options{Prefix: prefixOf(r.mode, r.side), NoRegistryWatch: !watch})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := func(ctx context.Context, sentNs int64) error {
		d, err := c.Decide(ctx, noneType, noneOption, b.payload.event(sentNs))
		if err != nil {
			return err
		}
		if !d.Allowed || d.Code != event.CodeNoTrigger {
			return fmt.Errorf("decision allowed=%v code=%q message=%q, want NO_TRIGGER", d.Allowed, d.Code, d.Message)
		}
		return nil
	}
	if err := req(ctx, time.Now().UnixNano()); err != nil { // starts the watch
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for watch && !c.RegistryWatched() {
		if time.Now().After(deadline) {
			return nil, errors.New("the client's registry watch was not current after 30s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return b.drivePreWith(ctx, r, 1, req)
}
