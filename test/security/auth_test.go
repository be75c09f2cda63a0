package security_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// connect connects to url the way trigger-worker does for cfg, without
// retrying a failed first connection.
func connect(t testing.TB, url string, cfg natsconn.Config) (*nats.Conn, error) {
	t.Helper()
	opts, err := natsconn.Options(cfg, natsconn.Events{})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(opts, nats.RetryOnFailedConnect(false), nats.MaxReconnects(0))...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// TestWorkerAuthentication runs the trigger-worker binary against servers
// that require each way of authenticating a worker supports: a
// credentials file (an operator/account/user JWT chain, server in operator
// mode with a memory resolver), an nkey seed file, user and password, a
// token, and TLS with a client certificate the server verifies. The worker
// connects and answers a PRE request; connections without the credential,
// or with the wrong one (a user of an unknown account, another nkey, a
// wrong password or token, no client certificate, a certificate from
// another CA), are refused. The secret of each (password, token, nkey
// seed, the user seed in the credentials file) appears neither in the
// worker's debug log, nor in its metrics, nor in `trigger-worker check`.
func TestWorkerAuthentication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	op := newOperator(t)
	credsFile, credsSeed := op.creds(t, dir, "worker", nil)
	foreign := newOperator(t)
	foreignCreds, _ := foreign.creds(t, dir, "foreign", nil)
	nkFile, nkSeed, nkPub := nkeyUser(t, dir, "worker")
	strangerNK, _, _ := nkeyUser(t, dir, "stranger")
	ca := newPKI(t, "trusted")
	rogue := newPKI(t, "rogue")
	const pw, token = "s3cret-worker-password-7b1d", "s3cret-worker-token-c4e9"

	tests := []struct {
		name    string
		server  natstest.Option
		keys    map[string]any // config keys besides nats.url
		env     []string       // environment of trigger-worker
		conn    natsconn.Config
		secrets []string
		refused []natsconn.Config
	}{
		{
			name:    "creds",
			server:  op.serverOption(),
			keys:    map[string]any{"nats.creds": credsFile},
			conn:    natsconn.Config{Creds: credsFile},
			secrets: []string{credsSeed},
			refused: []natsconn.Config{{Creds: foreignCreds}, {}},
		},
		{
			name: "nkey",
			server: natstest.WithOptions(func(o *server.Options) {
				o.Nkeys = []*server.NkeyUser{{Nkey: nkPub}}
			}),
			keys:    map[string]any{"nats.nkey": nkFile},
			conn:    natsconn.Config{NKey: nkFile},
			secrets: []string{nkSeed},
			refused: []natsconn.Config{{NKey: strangerNK}, {}},
		},
		{
			name: "user and password",
			server: natstest.WithOptions(func(o *server.Options) {
				o.Users = []*server.User{{Username: "worker", Password: pw}}
			}),
			keys:    map[string]any{"nats.user": "worker"},
			env:     []string{"TRIGGER_NATS_PASSWORD=" + pw},
			conn:    natsconn.Config{User: "worker", Password: pw},
			secrets: []string{pw},
			refused: []natsconn.Config{{User: "worker", Password: "wrong"}, {User: "worker"}, {}},
		},
		{
			name:    "token",
			server:  natstest.WithOptions(func(o *server.Options) { o.Authorization = token }),
			env:     []string{"TRIGGER_NATS_TOKEN=" + token},
			conn:    natsconn.Config{Token: token},
			secrets: []string{token},
			refused: []natsconn.Config{{Token: "wrong-token"}, {}},
		},
		{
			name:   "TLS client certificate",
			server: withTLS(ca),
			keys:   map[string]any{"nats.tls.ca": ca.caFile, "nats.tls.cert": ca.clientCert, "nats.tls.key": ca.clientKey},
			conn:   natsconn.Config{TLSCA: ca.caFile, TLSCert: ca.clientCert, TLSKey: ca.clientKey},
			refused: []natsconn.Config{
				{TLSCA: ca.caFile}, // no client certificate
				// Another CA's: the server only accepts its own CA's, so the
				// client does not even offer it.
				{TLSCA: ca.caFile, TLSCert: rogue.clientCert, TLSKey: rogue.clientKey},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t, tt.server)
			url := s.ClientURL()
			scripts := t.TempDir()
			proctest.WriteFile(t, scripts, "deny.lua", proctest.DenyScript)
			keys := map[string]any{"log.level": "debug"}
			maps.Copy(keys, tt.keys)
			cfg := proctest.WriteWorkerConfig(t, scripts, url, scripts, keys)
			p := startProcess(t, tt.env, "run", "-c", cfg)
			base := p.WaitReady(t)

			nc, err := connect(t, url, tt.conn)
			if err != nil {
				t.Fatalf("client with the worker's credential: %v", err)
			}
			c, err := client.New(nc, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
			if err != nil || d.Allowed || d.Code != "QUOTA_EXCEEDED" {
				t.Errorf("Decide = %+v, %v, want the worker's QUOTA_EXCEEDED", d, err)
			}

			for i, bad := range tt.refused {
				if nc, err := connect(t, url, bad); err == nil {
					nc.Close()
					t.Errorf("refused[%d] (%+v): connected, want refused", i, bad)
				} else {
					t.Logf("refused[%d]: %v", i, err)
				}
			}

			metrics, _, err := httpGet(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			code, checkOut, checkErr := run(t, tt.env, "check", "-c", cfg)
			if code != 0 {
				t.Errorf("check exit code %d:\n%s%s", code, checkOut, checkErr)
			}
			p.Stop(t)
			outputs := map[string]string{
				"log": p.Stderr() + p.Stdout(), "metrics": metrics, "check": checkOut + checkErr,
			}
			for _, secret := range tt.secrets {
				for where, out := range outputs {
					if strings.Contains(out, secret) {
						t.Errorf("the secret %.6s... appears in the worker's %s", secret, where)
					}
				}
			}
			if !strings.Contains(outputs["log"], "level=DEBUG") {
				t.Errorf("the worker logged nothing at debug level; the check is void:\n%s", outputs["log"])
			}
		})
	}
}
