package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// GlobalAccount is the account of clients when the servers configure none.
const GlobalAccount = "$G"

// RunSupercluster starts k clusters (2 when k <= 0) of n servers each (3
// when n <= 0) on 127.0.0.1 with random client, cluster and gateway ports,
// the clusters joined by gateways, and returns them by cluster once every
// server has a route to every other of its cluster and a gateway to every
// other cluster. The clusters are named "A", "B", ... and their nodes
// "A-1" to "A-n", and so on. With [WithJetStream] each node has its own store
// directory, the JetStream meta group spans every node, and RunSupercluster
// also waits until its leader is elected and sees all k*n peers. A stream or
// bucket created without a placement lives in the cluster of the server the
// creating client is connected to. All servers are shut down when the test
// ends; [Restart] restarts a single node.
func RunSupercluster(t testing.TB, k, n int, opts ...Option) [][]*server.Server {
	t.Helper()
	if k <= 0 {
		k = 2
	}
	if n <= 0 {
		n = 3
	}
	if k < 2 || k > 26 {
		t.Fatalf("natstest: RunSupercluster needs 2 to 26 clusters, got %d; use RunCluster", k)
	}
	if n < 2 {
		t.Fatalf("natstest: RunSupercluster needs at least 2 servers per cluster, got %d", n)
	}
	base := &serverConfig{}
	for _, o := range opts {
		o(base)
	}
	if base.port > 0 {
		t.Fatalf("natstest: RunSupercluster does not accept WithPort")
	}

	// Every node has a route to each node of its cluster (itself included,
	// which it ignores) and a gateway to each node of the other clusters,
	// as in a production configuration: JetStream counts them to size the
	// meta group, so that no cluster elects a meta leader of its own before
	// the gateways connect. So all ports are chosen before any server
	// starts.
	names := make([]string, k)
	clusterPorts := make([][]int, k)
	gatewayPorts := make([][]int, k)
	for i := range k {
		names[i] = string(rune('A' + i))
		for range n {
			clusterPorts[i] = append(clusterPorts[i], freePort(t))
			gatewayPorts[i] = append(gatewayPorts[i], freePort(t))
		}
	}
	clusters := make([][]*server.Server, k)
	for i, name := range names {
		var routes []*url.URL
		for _, p := range clusterPorts[i] {
			routes = append(routes, routeURL(p))
		}
		var gateways []gatewayRemote
		for j, other := range names {
			if j == i {
				continue
			}
			for _, p := range gatewayPorts[j] {
				gateways = append(gateways, gatewayRemote{name: other, url: gatewayURL(p)})
			}
		}
		for m := range n {
			cfg := base.clone()
			cfg.serverName = fmt.Sprintf("%s-%d", name, m+1)
			cfg.clusterName = name
			cfg.clusterPort = clusterPorts[i][m]
			cfg.gatewayPort = gatewayPorts[i][m]
			cfg.routes = routes
			cfg.gateways = gateways
			if cfg.jetStream {
				cfg.storeDir = nodeStoreDir(t, base.storeDir, cfg.serverName)
			}
			clusters[i] = append(clusters[i], start(t, cfg))
		}
	}

	all := slices.Concat(clusters...)
	CheckFor(t, clusterFormTimeout, 25*time.Millisecond, func() error {
		for _, c := range clusters {
			if err := checkFullMesh(c); err != nil {
				return err
			}
		}
		if err := checkGateways(all, names); err != nil {
			return err
		}
		if base.jetStream {
			return checkMetaLeader(all)
		}
		return nil
	})
	return clusters
}

// checkGateways reports an error unless every server has an outbound
// gateway connection to every other cluster of names. (Inbound ones are not
// checked: each server connects to one server of each other cluster, so a
// server may have none from a cluster.)
func checkGateways(servers []*server.Server, names []string) error {
	var errs []error
	for _, s := range servers {
		gz, err := s.Gatewayz(&server.GatewayzOptions{})
		if err != nil {
			return fmt.Errorf("gatewayz of %s: %w", s.Name(), err)
		}
		for _, name := range names {
			if name == s.ClusterName() {
				continue
			}
			if out := gz.OutboundGateways[name]; out == nil || out.Connection == nil {
				errs = append(errs, fmt.Errorf("server %s has no outbound gateway to cluster %s", s.Name(), name))
			}
		}
	}
	return errors.Join(errs...)
}

// WaitGatewayQueueInterest waits until every server of servers knows, on
// its outbound gateway to cluster remote, that remote has a subscriber to
// subject in queue group queue in the global account; it fails the test if
// that has not happened within total. subject is compared as subscribed
// (a wildcard subscription is named by its wildcard subject).
//
// A server sends a queue group's message across a gateway only when no
// member of the group is in its own cluster, and only to clusters whose
// interest it knows: once this returns, a request from any of servers
// reaches the group in remote when the group has no member left in the
// requester's cluster, with no window in which the server would answer "no
// responders".
func WaitGatewayQueueInterest(t testing.TB, servers []*server.Server, remote, subject, queue string, total time.Duration) {
	t.Helper()
	CheckFor(t, total, 20*time.Millisecond, func() error {
		var errs []error
		for _, s := range servers {
			if !gatewayHasQueueSub(s, remote, subject, queue) {
				errs = append(errs, fmt.Errorf("server %s: no queue subscription %s (group %s) through its gateway to cluster %s", s.Name(), subject, queue, remote))
			}
		}
		return errors.Join(errs...)
	})
}

// WaitNoGatewayQueueInterest waits until no server of servers knows of a
// subscriber to subject in queue group queue in cluster remote any more (the
// opposite of [WaitGatewayQueueInterest]); it fails the test if that has not
// happened within total.
func WaitNoGatewayQueueInterest(t testing.TB, servers []*server.Server, remote, subject, queue string, total time.Duration) {
	t.Helper()
	CheckFor(t, total, 20*time.Millisecond, func() error {
		for _, s := range servers {
			if gatewayHasQueueSub(s, remote, subject, queue) {
				return fmt.Errorf("server %s still sees queue subscription %s (group %s) in cluster %s", s.Name(), subject, queue, remote)
			}
		}
		return nil
	})
}

// gatewayHasQueueSub reports whether s's outbound gateway to cluster remote
// carries a queue subscription to subject in group queue for the global
// account.
func gatewayHasQueueSub(s *server.Server, remote, subject, queue string) bool {
	gz, err := s.Gatewayz(&server.GatewayzOptions{Name: remote, AccountName: GlobalAccount, AccountSubscriptionsDetail: true})
	if err != nil {
		return false
	}
	out := gz.OutboundGateways[remote]
	if out == nil {
		return false
	}
	for _, a := range out.Accounts {
		for _, sd := range a.SubsDetail {
			if sd.Subject == subject && sd.Queue == queue {
				return true
			}
		}
	}
	return false
}

func gatewayURL(port int) *url.URL {
	return &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}
