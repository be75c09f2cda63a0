package natsconn_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
)

// TestEmbeddedServerAndEvents: an embedded server on port 0 listens on a
// free port; a connection made with Options sets the Connected gauge while
// it is up and clears it when it closes.
func TestEmbeddedServerAndEvents(t *testing.T) {
	ns, err := natsconn.StartEmbedded(natsconn.EmbeddedConfig{Listen: "127.0.0.1:0", JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.JetStreamEnabled() {
		t.Error("JetStream is off, want on")
	}

	connected := prometheus.NewGauge(prometheus.GaugeOpts{Name: "connected", Help: "Connected."})
	opts, err := natsconn.Options(natsconn.Config{}, natsconn.Events{Connected: connected})
	if err != nil {
		t.Fatalf("Options: %v", err)
	}
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", ns.ClientURL(), err)
	}
	waitGauge(t, connected, 1)
	if got := nc.Opts.Name; got != natsconn.DefaultName {
		t.Errorf("connection name = %q, want %q", got, natsconn.DefaultName)
	}
	nc.Close()
	waitGauge(t, connected, 0)
}

// waitGauge waits until g reads want; nats.go reports state changes from a
// goroutine of its own.
func waitGauge(t *testing.T, g prometheus.Gauge, want float64) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := testutil.ToFloat64(g); got != want {
			return errors.New("connected gauge not updated yet")
		}
		return nil
	})
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsconn.Config
	}{
		{"client certificate without key", natsconn.Config{TLSCert: "client.pem"}},
		{"client key without certificate", natsconn.Config{TLSKey: "client-key.pem"}},
		{"missing nkey seed file", natsconn.Config{NKey: "/nonexistent/user.nk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := natsconn.Options(tt.cfg, natsconn.Events{}); err == nil {
				t.Errorf("Options(%+v) = nil error, want one", tt.cfg)
			}
		})
	}
}

func TestStartEmbeddedBadListen(t *testing.T) {
	for _, listen := range []string{"127.0.0.1", "127.0.0.1:port"} {
		if ns, err := natsconn.StartEmbedded(natsconn.EmbeddedConfig{Listen: listen}); err == nil {
			ns.Shutdown()
			t.Errorf("StartEmbedded(Listen %q) = nil error, want one", listen)
		}
	}
}
