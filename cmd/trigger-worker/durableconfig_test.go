package main

import (
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/config"
)

// TestDurableConfigLimits: the configuration's stream_max_age 0 is an
// unlimited stream (the worker's -1, not its 24h default), and
// stream_discard reaches the worker.
func TestDurableConfigLimits(t *testing.T) {
	d := config.Default().Delivery
	dc, err := durableConfig(d, true)
	if err != nil {
		t.Fatal(err)
	}
	if dc.StreamMaxAge != 24*time.Hour || dc.DiscardOld {
		t.Errorf("defaults: max age %v, discard old %v; want 24h, false", dc.StreamMaxAge, dc.DiscardOld)
	}
	d.StreamMaxAge = 0
	d.StreamDiscard = config.StreamDiscardOld
	if dc, err = durableConfig(d, true); err != nil {
		t.Fatal(err)
	}
	if dc.StreamMaxAge != -1 || !dc.DiscardOld {
		t.Errorf("stream_max_age 0, stream_discard old: max age %v, discard old %v; want -1 (unlimited), true", dc.StreamMaxAge, dc.DiscardOld)
	}
}
