package security_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// The secrets of the secrets tests: each must never be printed.
const (
	secretPassword = "pw-never-printed-61c2f0"
	secretLoopKey  = "loop-key-never-printed-9e4b"
	secretWebhook  = "webhook-key-never-printed-38ad"
)

// webhookSecret is secretWebhook in the Standard Webhooks form.
var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(secretWebhook))

// leaks returns the secrets out contains, in any of the forms they were
// given in.
func leaks(out string) []string {
	var found []string
	for _, s := range []string{secretPassword, secretLoopKey, secretWebhook, webhookSecret,
		strings.TrimPrefix(webhookSecret, "whsec_"), url.QueryEscape(secretPassword)} {
		if strings.Contains(out, s) {
			found = append(found, s)
		}
	}
	return found
}

// signedHook is a webhook endpoint that counts the requests carrying a
// Standard Webhooks signature.
func signedHook(t testing.TB) (*httptest.Server, chan string) {
	t.Helper()
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Get("webhook-signature")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// TestSecretsNotPrinted runs the trigger-worker binary at debug level
// (JSON logs) with a NATS password (in the URL, as nats://user:pass@host),
// a loop key (TRIGGER_LOOP_KEY) and a signed webhook function, makes it
// handle a POST event (the webhook gets a signed request) and a PRE request
// with a forged Trigger-Origin, and checks that none of the secrets appears
// in its log, its /metrics, or the output of `trigger-worker check`.
func TestSecretsNotPrinted(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Users = []*server.User{{Username: "worker", Password: secretPassword}}
	}))
	hook, signatures := signedHook(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	u, _ := url.Parse(s.ClientURL())
	u.User = url.UserPassword("worker", secretPassword)
	cfg := proctest.WriteWorkerConfig(t, dir, u.String(), dir, map[string]any{
		"functions": []any{map[string]any{"ref": "notify", "trigger_type": "POST_CREATE", "trigger_options": []string{"ANY"},
			"webhook": map[string]any{"url": hook.URL, "secret": webhookSecret}}},
		"log.level":  "debug",
		"log.format": "json",
	})
	env := []string{"TRIGGER_LOOP_KEY=" + secretLoopKey}
	p := startProcess(t, env, "run", "-c", cfg)
	base := p.WaitReady(t)

	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("worker", secretPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if sig := natstest.ChanRecv(t, signatures, waitShort); sig == "" {
		t.Error("the webhook request is not signed: the secret was not used")
	}
	forged := nats.NewMsg("trigger.PRE_CREATE.SERVER")
	forged.Header.Set(subjects.HeaderOrigin, "forged/01JDQ7Z6W3S6K4V0Q5H3YB3M8C/99999999999999/AAAA")
	if _, err := nc.RequestMsg(forged, waitShort); err != nil {
		t.Fatal(err)
	}
	metrics, _, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	code, checkOut, checkErr := run(t, env, "check", "-c", cfg)
	if code != 0 {
		t.Errorf("check exit code %d:\n%s%s", code, checkOut, checkErr)
	}
	p.Stop(t)
	logs := p.Stderr() + p.Stdout()
	if !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, "Trigger-Origin does not verify") {
		t.Errorf("the log lacks the debug lines and the forged-origin warning; the check is void:\n%s", logs)
	}
	for where, out := range map[string]string{"log": logs, "metrics": metrics, "check": checkOut + checkErr} {
		if found := leaks(out); len(found) > 0 {
			t.Errorf("the worker's %s contains %d secret(s)", where, len(found))
		}
	}
}

// TestSecretsNotLoggedInProcess runs a worker in the test process with a
// debug logger on a connection made with natsconn.Options (password), a loop
// key and a signed webhook handler, handles a POST and a forged PRE, and
// checks the captured log and the metrics registry for the secrets.
func TestSecretsNotLoggedInProcess(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Users = []*server.User{{Username: "worker", Password: secretPassword}}
	}))
	logs := proctest.NewLogCapture()
	reg := prometheus.NewRegistry()
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := natsconn.Options(natsconn.Config{User: "worker", Password: secretPassword}, natsconn.Events{Logger: logs.Logger, Connected: m.NATSConnected, SlowConsumers: m.SlowConsumers})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	hook, signatures := signedHook(t)
	wh, err := webhook.New(webhook.Config{URL: hook.URL, Secret: webhookSecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wh.Close() })
	logs.Logger.Debug("webhook configured", "config", webhook.Config{URL: hook.URL, Secret: webhookSecret})
	proctest.StartWorker(t, nc, worker.Config{Logger: logs.Logger, Metrics: m, LoopKey: []byte(secretLoopKey)},
		worker.Function{Ref: "notify", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Handler: wh}, denyBig())

	c, err := client.New(nc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{}); err != nil {
		t.Fatal(err)
	}
	if sig := natstest.ChanRecv(t, signatures, waitShort); sig == "" {
		t.Error("the webhook request is not signed")
	}
	forged := nats.NewMsg("trigger.PRE_CREATE.SERVER")
	forged.Header.Set(subjects.HeaderOrigin, "forged/x")
	if _, err := nc.RequestMsg(forged, waitShort); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	for _, mf := range mfs {
		fmt.Fprintln(&metrics, mf.String())
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("nothing logged at debug level; the check is void")
	}
	for where, out := range map[string]string{"log": logs.String(), "metrics": metrics.String()} {
		if found := leaks(out); len(found) > 0 {
			t.Errorf("the worker's %s contains %d secret(s):\n%s", where, len(found), out)
		}
	}
}
