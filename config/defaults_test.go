package config_test

import (
	"reflect"
	"testing"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/datastore"
	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
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
		{"decision_log.max_age", d.DecisionLog.MaxAge, worker.DefaultDecisionLogAge},
		{"decision_log.input", d.DecisionLog.Input, worker.InputHash},
		{"archive.max_age", d.Archive.MaxAge, worker.DefaultArchiveMaxAge},
		{"archive.max_bytes", d.Archive.MaxBytes, int64(worker.DefaultArchiveMaxBytes)},
		{"scripts.api_prefix", d.Scripts.APIPrefix, lua.DefaultAPIPrefix},
		{"scripts.data_store_max_bytes", d.Scripts.DataStoreMaxBytes, datastore.DefaultMaxBytes},
		{"email.tls", d.Email.TLS, mailer.TLSStartTLS},
		{"email.rate_per_minute", d.Email.RatePerMinute, mailer.DefaultRatePerMinute},
		{"email.timeout", d.Email.Timeout, mailer.DefaultTimeout},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default() %s = %v, the package's default is %v", tt.key, tt.got, tt.want)
		}
	}
}
