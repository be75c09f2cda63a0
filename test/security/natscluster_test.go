package security_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// TestClusterConfTLS checks deploy/nats-cluster/nats-server.conf: it
// parses with its environment, names the three routes with TLS
// verified both ways; a node from it (alone, on a free port) takes only
// TLS clients with a certificate of the CA, for which JetStream works.
func TestClusterConfTLS(t *testing.T) {
	p := newPKI(t, "cluster")
	t.Setenv("NATS_NAME", "nats-1")
	t.Setenv("NATS_TLS_CERT", p.serverCert)
	t.Setenv("NATS_TLS_KEY", p.serverKey)
	t.Setenv("NATS_TLS_CA", p.caFile)
	opts, err := server.ProcessConfigFile(filepath.Join(proctest.ModuleRoot(t), "deploy", "nats-cluster", "nats-server.conf"))
	if err != nil {
		t.Fatalf("deploy/nats-cluster/nats-server.conf: %v", err)
	}
	verified := func(c *tls.Config) bool { return c != nil && c.ClientAuth == tls.RequireAndVerifyClientCert }
	if opts.ServerName != "nats-1" || len(opts.Routes) != 3 || !verified(opts.Cluster.TLSConfig) || !verified(opts.TLSConfig) || !opts.JetStream {
		t.Fatalf("conf: name %q, %d routes, routes verified %v, clients verified %v, JetStream %v; want nats-1, 3, true, true, true",
			opts.ServerName, len(opts.Routes), verified(opts.Cluster.TLSConfig), verified(opts.TLSConfig), opts.JetStream)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	// One node: without the cluster (JetStream would wait for its peers).
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("node not ready")
	}
	url := "tls://" + s.Addr().String()

	if nc, err := nats.Connect(url, nats.RootCAs(p.caFile), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without a certificate connected")
	}
	tlsOpts, err := natsconn.Options(natsconn.Config{TLSCA: p.caFile, TLSCert: p.clientCert, TLSKey: p.clientKey}, natsconn.Events{})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, tlsOpts...)
	if err != nil {
		t.Fatalf("connect with the worker's TLS options: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Errorf("JetStream over TLS: %v", err)
	}
}
