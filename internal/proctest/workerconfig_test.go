package proctest

import (
	"slices"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/config"
)

// TestWriteWorkerConfig: the file loads as trigger-worker's configuration,
// with the defaults of end-to-end tests and the keys set on top.
func TestWriteWorkerConfig(t *testing.T) {
	dir := t.TempDir()
	path := WriteWorkerConfig(t, dir, "nats://127.0.0.1:4999", dir, map[string]any{
		"delivery.backoff": []string{"100ms"},
		"log.level":        "debug",
		"nats.tls.ca":      "ca.pem",
		"functions": []any{map[string]any{"ref": "hook", "trigger_type": "POST_CREATE",
			"trigger_options": []string{"ANY"}, "webhook": map[string]any{"url": "http://127.0.0.1:1/"}}},
	})
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if cfg.NATS.URL != "nats://127.0.0.1:4999" || cfg.Delivery.Mode != config.DeliveryCore || cfg.Scripts.Dir != dir ||
		cfg.Metrics.Listen != "127.0.0.1:0" {
		t.Errorf("defaults: nats.url %q, delivery.mode %q, scripts.dir %q, metrics.listen %q",
			cfg.NATS.URL, cfg.Delivery.Mode, cfg.Scripts.Dir, cfg.Metrics.Listen)
	}
	if !slices.Equal(cfg.Delivery.Backoff, []time.Duration{100 * time.Millisecond}) || cfg.Log.Level != "debug" ||
		cfg.NATS.TLS.CA != "ca.pem" || len(cfg.Functions) != 1 || cfg.Functions[0].Webhook == nil {
		t.Errorf("keys set: backoff %v, log.level %q, nats.tls.ca %q, functions %+v",
			cfg.Delivery.Backoff, cfg.Log.Level, cfg.NATS.TLS.CA, cfg.Functions)
	}
}
