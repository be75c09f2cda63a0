package main

import (
	"testing"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestLoopTTLMaximum: the config accepts exactly the loop.ttl values the
// worker accepts, so a valid config never fails at worker.New.
func TestLoopTTLMaximum(t *testing.T) {
	if config.MaxLoopTTL != worker.MaxOriginTTL {
		t.Errorf("config.MaxLoopTTL = %v, worker.MaxOriginTTL = %v, want them equal", config.MaxLoopTTL, worker.MaxOriginTTL)
	}
}
