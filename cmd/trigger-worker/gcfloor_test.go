package main

import (
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/gcfloor"
)

// TestGCFloor: the worker's heap floor raises GOGC, unless it is 0 or the
// environment sets the collector, and what it returns puts GOGC back.
func TestGCFloor(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	floor := config.GC{HeapFloorBytes: 1 << 30}

	gogc := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	settle := func() {
		for range 3 {
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	for _, c := range []struct {
		name string
		cfg  config.GC
		env  map[string]string
		want int // GOGC after collections
	}{
		{"floor", floor, nil, gcfloor.MaxPercent},
		{"off in the config", config.GC{}, nil, 100},
		{"GOGC set", floor, map[string]string{"GOGC": "200"}, 100},
		{"GOMEMLIMIT set", floor, map[string]string{"GOMEMLIMIT": "1GiB"}, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, name := range gcfloor.Env {
				t.Setenv(name, c.env[name])
			}
			debug.SetGCPercent(100)
			stop := startGCFloor(c.cfg, log)
			deadline := time.Now().Add(10 * time.Second)
			for settle(); gogc() != c.want && time.Now().Before(deadline); settle() {
			}
			if got := gogc(); got != c.want {
				t.Errorf("GOGC = %d, want %d", got, c.want)
			}
			stop()
			if got := gogc(); got != 100 {
				t.Errorf("GOGC after stop = %d, want 100", got)
			}
		})
	}
}
