package main

import (
	"log/slog"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/gcfloor"
)

// startGCFloor starts the heap floor of cfg (see [config.GC]) unless it is
// 0 or the environment sets the collector (GOGC, GOMEMLIMIT), and returns
// what stops it.
func startGCFloor(cfg config.GC, log *slog.Logger) (stop func()) {
	if cfg.HeapFloorBytes <= 0 {
		return func() {}
	}
	if name, v, ok := gcfloor.EnvSets(); ok {
		log.Info("gc.heap_floor_bytes is off: the environment sets the collector", "env", name, "value", v)
		return func() {}
	}
	f := gcfloor.Start(uint64(cfg.HeapFloorBytes))
	log.Debug("garbage collector heap floor", "bytes", cfg.HeapFloorBytes)
	return f.Stop
}
