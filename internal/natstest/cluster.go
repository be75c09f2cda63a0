package natstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterFormTimeout bounds how long RunCluster waits for the routes and the
// JetStream meta leader.
const clusterFormTimeout = 30 * time.Second

// RunCluster starts a cluster of n servers (3 when n <= 0) on 127.0.0.1 with
// random client and cluster ports and returns them once every server has a
// route to every other. With [WithJetStream] each node has its own store
// directory and RunCluster also waits until the JetStream meta leader is
// elected and sees all n peers. Nodes are named "S-1" to "S-n". All servers
// are shut down when the test ends; [Restart] restarts a single node.
//
// The first node is the seed: the others have a route to it and learn about
// each other from it.
func RunCluster(t testing.TB, n int, opts ...Option) []*server.Server {
	t.Helper()
	if n <= 0 {
		n = 3
	}
	if n < 2 {
		t.Fatalf("natstest: RunCluster needs at least 2 servers, got %d; use RunServer", n)
	}
	base := &serverConfig{}
	for _, o := range opts {
		o(base)
	}
	if base.port > 0 {
		t.Fatalf("natstest: RunCluster does not accept WithPort")
	}

	servers := make([]*server.Server, 0, n)
	var seed *url.URL
	seedPort := -1
	if base.jetStream {
		// A JetStream cluster node refuses to start without a configured
		// route, so the seed gets a route to itself (which it ignores): its
		// cluster port has to be known before it starts.
		seedPort = freePort(t)
		seed = routeURL(seedPort)
	}
	for i := range n {
		cfg := base.clone()
		cfg.serverName = fmt.Sprintf("S-%d", i+1)
		cfg.clusterName = "natstest"
		if i == 0 {
			cfg.clusterPort = seedPort
		}
		if cfg.jetStream {
			cfg.storeDir = nodeStoreDir(t, base.storeDir, cfg.serverName)
		}
		if seed != nil {
			cfg.routes = []*url.URL{seed}
		}
		s := start(t, cfg)
		if seed == nil {
			addr := s.ClusterAddr()
			if addr == nil {
				t.Fatalf("natstest: seed server %s has no cluster listener", s.Name())
			}
			seed = routeURL(addr.Port)
		}
		servers = append(servers, s)
	}

	CheckFor(t, clusterFormTimeout, 25*time.Millisecond, func() error {
		if err := checkFullMesh(servers); err != nil {
			return err
		}
		if base.jetStream {
			return checkMetaLeader(servers)
		}
		return nil
	})
	return servers
}

// checkFullMesh reports an error unless every server has routes to all the
// others. Route pooling opens several connections per peer, so peers are
// counted by name.
func checkFullMesh(servers []*server.Server) error {
	var errs []error
	for _, s := range servers {
		rz, err := s.Routez(&server.RoutezOptions{})
		if err != nil {
			return fmt.Errorf("routez of %s: %w", s.Name(), err)
		}
		var peers []string
		for _, r := range rz.Routes {
			if !slices.Contains(peers, r.RemoteName) {
				peers = append(peers, r.RemoteName)
			}
		}
		if len(peers) != len(servers)-1 {
			slices.Sort(peers)
			errs = append(errs, fmt.Errorf("server %s has routes to %v, want %d peers", s.Name(), peers, len(servers)-1))
		}
	}
	return errors.Join(errs...)
}

// checkMetaLeader reports an error unless exactly one server is the
// JetStream meta leader, it sees every server as a current peer, and every
// server's meta state is current.
func checkMetaLeader(servers []*server.Server) error {
	var leaders []*server.Server
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			leaders = append(leaders, s)
		}
	}
	if len(leaders) != 1 {
		names := make([]string, len(leaders))
		for i, s := range leaders {
			names[i] = s.Name()
		}
		return fmt.Errorf("want one JetStream meta leader, have %d %v", len(leaders), names)
	}
	if peers := leaders[0].JetStreamClusterPeers(); len(peers) != len(servers) {
		slices.Sort(peers)
		return fmt.Errorf("meta leader %s sees peers %v, want %d", leaders[0].Name(), peers, len(servers))
	}
	for _, s := range servers {
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("server %s: JetStream meta state not current", s.Name())
		}
	}
	return nil
}

// handedOut holds the ports freePort has returned in this process.
var handedOut sync.Map

func routeURL(port int) *url.URL {
	return &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

// freePort returns a loopback TCP port that was free a moment ago, for a
// server that must know its peers' ports before they start. It is drawn
// below the kernel's ephemeral range (32768 and up on Linux): a port taken
// from that range and released could be handed to any outgoing connection
// on the machine before the server binds it, and the server would then
// never become ready.
//
// A port is handed out once per process: the ports of a supercluster are
// all chosen before its first server binds any, so a port free when asked
// could otherwise be chosen twice.
func freePort(t testing.TB) int {
	t.Helper()
	const low, high = 20000, 32000
	for range 200 {
		port := low + rand.IntN(high-low)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		_ = l.Close()
		return port
	}
	t.Fatalf("natstest: no free port between %d and %d after 200 tries", low, high)
	return 0
}
