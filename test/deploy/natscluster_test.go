package deploy

import (
	"path"
	"strings"
	"testing"
)

const clusterCompose = "deploy/nats-cluster/docker-compose.yml"

// TestNATSClusterCompose checks the 3-node TLS cluster example: three NATS
// nodes with their names, certificates and own data volumes, and a worker
// that reaches all three over TLS with the certificates gen-certs.sh makes
// and replicates its streams on them.
func TestNATSClusterCompose(t *testing.T) {
	var c composeFileModel
	decodeYAML(t, clusterCompose, &c)
	gen := string(readRepoFile(t, "deploy/nats-cluster/gen-certs.sh"))
	made := func(file string) bool {
		name := strings.TrimSuffix(strings.TrimSuffix(path.Base(file), ".pem"), "-key")
		return name == "ca" || strings.Contains(gen, "leaf "+name+" ")
	}
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := c.Services[n]
		if !ok {
			t.Errorf("no service %s", n)
			continue
		}
		env := s.env()
		if env["NATS_NAME"] != n {
			t.Errorf("%s: NATS_NAME %q", n, env["NATS_NAME"])
		}
		for _, k := range []string{"NATS_TLS_CERT", "NATS_TLS_KEY", "NATS_TLS_CA"} {
			if !made(env[k]) {
				t.Errorf("%s: %s=%q is not a file gen-certs.sh makes", n, k, env[k])
			}
		}
		var data bool
		for _, m := range s.mounts() {
			data = data || (m.Target == "/data" && m.Source == n+"-data")
		}
		if !data {
			t.Errorf("%s: no volume %s-data on /data (its JetStream store)", n, n)
		}
	}
	w, ok := c.Services["trigger-worker"]
	if !ok {
		t.Fatal("no trigger-worker service")
	}
	env := w.env()
	if got, want := env["TRIGGER_NATS_URL"], "tls://nats-1:4222,tls://nats-2:4222,tls://nats-3:4222"; got != want {
		t.Errorf("worker TRIGGER_NATS_URL %q, want %q", got, want)
	}
	for _, k := range []string{"TRIGGER_NATS_TLS_CA", "TRIGGER_NATS_TLS_CERT", "TRIGGER_NATS_TLS_KEY"} {
		if !made(env[k]) {
			t.Errorf("worker %s=%q is not a file gen-certs.sh makes", k, env[k])
		}
	}
	if env["TRIGGER_DELIVERY_REPLICAS"] != "3" {
		t.Errorf("worker TRIGGER_DELIVERY_REPLICAS %q, want 3", env["TRIGGER_DELIVERY_REPLICAS"])
	}
}
