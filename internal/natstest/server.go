package natstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long a starting server may take to accept
// connections.
const readyTimeout = 10 * time.Second

// Option configures a server started by [RunServer] or [RunCluster].
type Option func(*serverConfig)

// serverConfig is what the options describe. The resolved form (random ports
// and temporary store directory replaced by the actual ones) is kept for each
// running server so that [Restart] can start it again.
type serverConfig struct {
	jetStream bool
	port      int    // <= 0: random
	storeDir  string // "": a new t.TempDir() when JetStream is on
	tweaks    []func(*server.Options)

	// Set by RunCluster only.
	serverName  string
	clusterName string
	clusterPort int // <= 0: random
	routes      []*url.URL

	// Set by RunSupercluster only: the gateway is named clusterName.
	gatewayPort int // 0: no gateway; < 0: random
	gateways    []gatewayRemote
}

// gatewayRemote is a gateway to another cluster of a supercluster.
type gatewayRemote struct {
	name string
	url  *url.URL
}

func (c *serverConfig) clone() *serverConfig {
	cp := *c
	cp.tweaks = slices.Clone(c.tweaks)
	cp.routes = slices.Clone(c.routes)
	cp.gateways = slices.Clone(c.gateways)
	return &cp
}

// WithJetStream enables JetStream, storing in a new temporary directory
// unless [WithStoreDir] names one.
func WithJetStream() Option {
	return func(c *serverConfig) { c.jetStream = true }
}

// WithStoreDir enables JetStream and stores its state in dir, so that a
// server started later with the same dir finds the same streams. With
// [RunCluster], each node uses its own subdirectory of dir.
func WithStoreDir(dir string) Option {
	return func(c *serverConfig) {
		c.jetStream = true
		c.storeDir = dir
	}
}

// WithPort listens for clients on port p instead of a random port; p <= 0
// means random. [RunCluster] does not accept it.
func WithPort(p int) Option {
	return func(c *serverConfig) { c.port = p }
}

// WithOptions calls f on the server options after natstest has filled them
// in, to set anything else (authorization, limits, ...). f runs again for
// every [Restart], so it should build fresh values (such as accounts) each
// time rather than share them between servers.
func WithOptions(f func(*server.Options)) Option {
	return func(c *serverConfig) { c.tweaks = append(c.tweaks, f) }
}

// running maps each server started by this package to its resolved
// configuration, for Restart. Entries are removed when the test that started
// the server ends.
var running sync.Map // *server.Server -> *serverConfig

// RunServer starts a NATS server on 127.0.0.1 with a random client port and
// returns it once it accepts connections. The server is shut down, and waited
// for, when the test ends.
func RunServer(t testing.TB, opts ...Option) *server.Server {
	t.Helper()
	cfg := &serverConfig{}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.jetStream && cfg.storeDir == "" {
		cfg.storeDir = t.TempDir()
	}
	return start(t, cfg)
}

// Restart shuts s down (if it is still running) and starts a new server with
// the same options, client, cluster and gateway ports and JetStream store
// directory, so that clients reconnect to it and find their streams again. s
// must have been started by [RunServer], [RunCluster], [RunSupercluster] or
// Restart. The new server is shut
// down when t ends.
//
// The port is free between the two servers; on a busy machine another
// process could take it, and Restart then fails the test.
func Restart(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	v, ok := running.Load(s)
	if !ok {
		t.Fatalf("natstest: Restart: server %s was not started by natstest or its test has ended", s.Name())
	}
	cfg := v.(*serverConfig).clone()
	s.Shutdown()
	s.WaitForShutdown()
	return start(t, cfg)
}

// start starts a server described by cfg, waits until it is ready and
// records its resolved configuration.
func start(t testing.TB, cfg *serverConfig) *server.Server {
	t.Helper()
	opts := buildOptions(cfg)
	logger := newTestLogger(t, cfg.serverName)
	if logger != nil {
		opts.NoLog = false
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	if logger != nil {
		s.SetLoggerV2(logger, logger.debug, logger.trace, false)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
		running.Delete(s)
		if logger != nil {
			logger.stop()
		}
	})
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		t.Fatalf("natstest: server %s not ready for connections after %v (client port %d, cluster port %d, <= 0 is random); NATSTEST_LOG=1 shows its log",
			s.Name(), readyTimeout, cfg.port, cfg.clusterPort)
	}

	resolved := cfg.clone()
	if addr, ok := s.Addr().(*net.TCPAddr); ok {
		resolved.port = addr.Port
	}
	if addr := s.ClusterAddr(); addr != nil {
		resolved.clusterPort = addr.Port
	}
	if addr := s.GatewayAddr(); addr != nil {
		resolved.gatewayPort = addr.Port
	}
	running.Store(s, resolved)
	return s
}

func buildOptions(cfg *serverConfig) *server.Options {
	port := cfg.port
	if port <= 0 {
		port = -1
	}
	o := &server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		ServerName: cfg.serverName,
		JetStream:  cfg.jetStream,
		StoreDir:   cfg.storeDir,
	}
	if cfg.clusterName != "" {
		cport := cfg.clusterPort
		if cport <= 0 {
			cport = -1
		}
		o.Cluster = server.ClusterOpts{Name: cfg.clusterName, Host: "127.0.0.1", Port: cport}
		for _, r := range cfg.routes {
			u := *r
			o.Routes = append(o.Routes, &u)
		}
	}
	if cfg.gatewayPort != 0 || len(cfg.gateways) > 0 {
		gport := cfg.gatewayPort
		if gport <= 0 {
			gport = -1
		}
		o.Gateway = server.GatewayOpts{Name: cfg.clusterName, Host: "127.0.0.1", Port: gport}
		for _, g := range cfg.gateways {
			u := *g.url
			o.Gateway.Gateways = append(o.Gateway.Gateways, &server.RemoteGatewayOpts{Name: g.name, URLs: []*url.URL{&u}})
		}
	}
	for _, f := range cfg.tweaks {
		f(o)
	}
	return o
}

// Connect connects to s and closes the connection when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	url := s.ClientURL()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ClusterURLs returns the client URLs of servers joined by commas, the form
// nats.Connect accepts.
func ClusterURLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// nodeStoreDir is the store directory of a cluster node: its own temporary
// directory, or a subdirectory of the one given with WithStoreDir.
func nodeStoreDir(t testing.TB, base, serverName string) string {
	t.Helper()
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, serverName)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("natstest: store dir: %v", err)
	}
	return dir
}

// testLogger writes server logs to the test log. It drops lines once the
// server has shut down, because the test may have finished by then.
type testLogger struct {
	t      testing.TB
	prefix string
	debug  bool
	trace  bool

	mu      sync.Mutex
	stopped bool
}

// newTestLogger returns a logger as NATSTEST_LOG asks, or nil for none.
func newTestLogger(t testing.TB, name string) *testLogger {
	l := &testLogger{t: t, prefix: "nats-server"}
	if name != "" {
		l.prefix += " " + name
	}
	switch strings.ToLower(os.Getenv("NATSTEST_LOG")) {
	case "", "0", "false":
		return nil
	case "debug":
		l.debug = true
	case "trace":
		l.debug, l.trace = true, true
	}
	return l
}

func (l *testLogger) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func (l *testLogger) logf(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.t.Logf("%s %s %s", l.prefix, level, fmt.Sprintf(format, v...))
}

func (l *testLogger) Noticef(format string, v ...any) { l.logf("[INF]", format, v...) }
func (l *testLogger) Warnf(format string, v ...any)   { l.logf("[WRN]", format, v...) }
func (l *testLogger) Fatalf(format string, v ...any)  { l.logf("[FTL]", format, v...) }
func (l *testLogger) Errorf(format string, v ...any)  { l.logf("[ERR]", format, v...) }
func (l *testLogger) Debugf(format string, v ...any)  { l.logf("[DBG]", format, v...) }
func (l *testLogger) Tracef(format string, v ...any)  { l.logf("[TRC]", format, v...) }

var _ server.Logger = (*testLogger)(nil)
