package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestDefaultsMatchPackages: every default of Default that a package also
// has (what that package does with a zero value) is the package's, so that
// trigger-worker and a Go program embedding the same packages behave alike.
func TestDefaultsMatchPackages(t *testing.T) {
	d := config.Default()
	tests := []struct {
		key       string
		got, want any
	}{
		{"nats.name", d.NATS.Name, natsconn.DefaultName},
		{"nats.embedded.listen", d.NATS.Embedded.Listen, natsconn.DefaultListen},
		{"subjects.prefix", d.Subjects.Prefix, subjects.DefaultPrefix},
		{"subjects.queue", d.Subjects.Queue, subjects.DefaultQueue},
		{"delivery.max_deliver", d.Delivery.MaxDeliver, worker.DefaultMaxDeliver},
		{"delivery.backoff", d.Delivery.Backoff, worker.DefaultBackoff},
		{"delivery.ack_wait", d.Delivery.AckWait, worker.DefaultAckWait},
		{"delivery.max_in_flight", d.Delivery.MaxInFlight, worker.DefaultMaxInFlight},
		{"delivery.max_event_bytes", d.Delivery.MaxEventBytes, event.DefaultMaxBytes},
		{"delivery.shutdown_timeout", d.Delivery.ShutdownTimeout, worker.DefaultShutdownTimeout},
		{"delivery.stream_max_age", d.Delivery.StreamMaxAge, worker.DefaultStreamMaxAge},
		{"delivery.stream_max_bytes", d.Delivery.StreamMaxBytes, int64(worker.DefaultStreamMaxBytes)},
		{"delivery.duplicate_window", d.Delivery.DuplicateWindow, worker.DefaultDuplicateWindow},
		{"loop.ttl", d.Loop.TTL, worker.DefaultOriginTTL},
		{"loop.ttl maximum", config.MaxLoopTTL, worker.MaxOriginTTL},
		{"registry.refresh", d.Registry.Refresh, worker.DefaultRegistryRefresh},
		{"scripts.api_prefix", d.Scripts.APIPrefix, luaDefaultAPIPrefix(t)},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default() %s = %v, the package's default is %v", tt.key, tt.got, tt.want)
		}
	}
}

// refusingBus is a handlers.Bus that sends nothing: every request fails.
type refusingBus struct{}

var errRefused = errors.New("refused")

func (refusingBus) Publish(context.Context, string, []byte) error { return errRefused }
func (refusingBus) Request(context.Context, string, []byte, time.Duration) ([]byte, error) {
	return nil, errRefused
}

// luaDefaultAPIPrefix returns the API prefix of the Lua kind given none: the
// prefix of the subject its adminAPI calls go to. (The kind does not export
// its default.)
func luaDefaultAPIPrefix(t *testing.T) string {
	t.Helper()
	const script = `function register() return { "probe" } end
function probe(p)
  if p == nil then return { ref = "probe", triggerType = "POST_CREATE", triggerOptions = { "ANY" } } end
  local ok, err = pcall(function() return adminAPI:ping() end)
  return { exitState = "SUCCESS", errorMessage = tostring(err) }
end
`
	path := filepath.Join(t.TempDir(), "probe.lua")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, err := handlers.LoadScript(path, handlers.LuaOptions{})
	if err != nil || len(fns) != 1 {
		t.Fatalf("LoadScript = %v, %v", fns, err)
	}
	defer fns[0].Handler.Close()
	ctx := handlers.WithCall(context.Background(), handlers.Call{Ref: "probe", Bus: refusingBus{}})
	res, err := fns[0].Handler.Handle(ctx, &event.Event{})
	// The error reads "adminAPI.ping: request on <prefix>.admin.ping: refused".
	_, rest, ok := strings.Cut(res.ErrorMessage, "request on ")
	subject, _, _ := strings.Cut(rest, ":")
	prefix, found := strings.CutSuffix(subject, ".admin.ping")
	if err != nil || !ok || !found {
		t.Fatalf("Handle = %+v, %v; want an error naming the subject of adminAPI.ping", res, err)
	}
	return prefix
}
