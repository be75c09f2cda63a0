package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// registryRig is a JetStream server whose registry holds: instance alpha
// (running) and beta (stopped) for PRE_CREATE.NETWORK, beta for PRE_AUTH
// ANY, an instance gone two days ago for PRE_CREATE.NETWORK, and a key of
// the earlier layout for PRE_DELETE.DISK written three days ago.
type registryRig struct {
	url string
	kv  jetstream.KeyValue
}

func newRegistryRig(t *testing.T) *registryRig {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	ctx := context.Background()
	deny := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "DENIED"}, nil
	})
	start := func(instance string, fns ...worker.Function) *worker.Worker {
		return proctest.StartWorker(t, natstest.Connect(t, s), worker.Config{Registry: true, Instance: instance}, fns...)
	}
	start("alpha", worker.Function{Ref: "deny_net", TriggerType: "PRE_CREATE", Options: []string{"NETWORK"}, Handler: deny})
	beta := start("beta",
		worker.Function{Ref: "deny_net", TriggerType: "PRE_CREATE", Options: []string{"NETWORK"}, Handler: deny},
		worker.Function{Ref: "audit_auth", TriggerType: "PRE_AUTH", Options: []string{"ANY"}, Handler: deny})
	if err := beta.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "TRIGGER_REGISTRY")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "PRE_CREATE.NETWORK")
	if err != nil {
		t.Fatal(err)
	}
	gone := time.Now().Add(-48 * time.Hour).UnixMilli()
	value := strings.Replace(string(entry.Value()), `"instances":{`,
		fmt.Sprintf(`"instances":{"gone-1":{"functions":["deny_net"],"seenMs":%d},`, gone), 1)
	if _, err := kv.Update(ctx, "PRE_CREATE.NETWORK", []byte(value), entry.Revision()); err != nil {
		t.Fatal(err)
	}
	legacy := time.Now().Add(-72 * time.Hour).UnixMilli()
	if _, err := kv.Put(ctx, "PRE_DELETE.DISK", fmt.Appendf(nil, `{"functions":["old_fn"],"updatedMs":%d}`, legacy)); err != nil {
		t.Fatal(err)
	}
	return &registryRig{url: s.ClientURL(), kv: kv}
}

// registry runs trigger-worker registry with args and the rig's server.
func (r *registryRig) registry(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(append([]string{"registry"}, args...), "--nats-url", r.url), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (r *registryRig) mustRegistry(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := r.registry(args...)
	if err != nil {
		t.Fatalf("registry %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	return out
}

// row matches a line of registry ls or prune output that starts with the
// first field, ends with the last, and has the others in order between.
func row(fields ...string) *regexp.Regexp {
	for i, f := range fields {
		fields[i] = regexp.QuoteMeta(f)
	}
	return regexp.MustCompile(`(?m)^` + strings.Join(fields, `\s(?:.*\s)?`) + `$`)
}

func wantRows(t *testing.T, what, out string, rows ...*regexp.Regexp) {
	t.Helper()
	for _, re := range rows {
		if !re.MatchString(out) {
			t.Errorf("%s: no line matching %s in\n%s", what, re, out)
		}
	}
}

func TestRegistryList(t *testing.T) {
	r := newRegistryRig(t)
	out := r.mustRegistry(t, "ls")
	wantRows(t, "registry ls", out,
		row("SUBJECT", "INSTANCE", "FUNCTIONS", "LAST SEEN", "ANSWERING"),
		row("trigger.PRE_AUTH.*", "beta", "audit_auth", "no"),
		row("trigger.PRE_CREATE.NETWORK", "alpha", "deny_net", "yes"),
		row("trigger.PRE_CREATE.NETWORK", "beta", "deny_net", "no"),
		row("trigger.PRE_CREATE.NETWORK", "gone-1", "deny_net", "no"),
		row("trigger.PRE_DELETE.DISK", "_legacy", "old_fn", "-"),
	)
	if !strings.Contains(out, "5 registrations of 4 instances for 3 subjects in TRIGGER_REGISTRY") {
		t.Errorf("registry ls summary missing:\n%s", out)
	}

	var regs []registration
	if err := json.Unmarshal([]byte(r.mustRegistry(t, "ls", "-o", "json")), &regs); err != nil {
		t.Fatalf("registry ls -o json: %v", err)
	}
	answering := map[string]string{}
	for _, g := range regs {
		state := "unknown"
		if g.Answering != nil {
			state = strconv.FormatBool(*g.Answering)
		}
		answering[g.Subject+" "+g.Instance+" "+strings.Join(g.Functions, ",")] = state
	}
	if want := map[string]string{
		"trigger.PRE_AUTH.* beta audit_auth":         "false",
		"trigger.PRE_CREATE.NETWORK alpha deny_net":  "true",
		"trigger.PRE_CREATE.NETWORK beta deny_net":   "false",
		"trigger.PRE_CREATE.NETWORK gone-1 deny_net": "false",
		"trigger.PRE_DELETE.DISK _legacy old_fn":     "unknown",
	}; !maps.Equal(answering, want) {
		t.Errorf("registry ls -o json = %v, want %v", answering, want)
	}

	out = r.mustRegistry(t, "ls", "--discover", "0")
	wantRows(t, "registry ls --discover 0", out, row("trigger.PRE_CREATE.NETWORK", "alpha", "deny_net", "?"))
	if !strings.Contains(out, "service discovery skipped") {
		t.Errorf("registry ls --discover 0 does not say discovery was skipped:\n%s", out)
	}

	if _, _, err := r.registry("ls", "--prefix", "other"); err == nil || !strings.Contains(err.Error(), "no registry bucket OTHER_REGISTRY") {
		t.Errorf("registry ls with another prefix: %v, want no registry bucket", err)
	}
}

func TestRegistryPrune(t *testing.T) {
	r := newRegistryRig(t)
	out := r.mustRegistry(t, "prune", "--older-than", "24h", "--dry-run")
	wantRows(t, "prune --dry-run", out,
		row("would remove", "trigger.PRE_CREATE.NETWORK", "gone-1", "deny_net", "ago)"),
		row("kept", "trigger.PRE_DELETE.DISK", "_legacy", "old_fn", "(--force removes it)"),
	)
	if !strings.Contains(out, "would remove 1 registrations, kept 1 as the last of their subject (dry run: nothing changed)") {
		t.Errorf("prune --dry-run summary:\n%s", out)
	}
	if out := r.mustRegistry(t, "ls", "--discover", "0"); !strings.Contains(out, "gone-1") {
		t.Fatalf("a dry run removed gone-1:\n%s", out)
	}

	out = r.mustRegistry(t, "prune", "--older-than", "24h")
	wantRows(t, "prune", out, row("removed", "trigger.PRE_CREATE.NETWORK", "gone-1", "deny_net", "ago)"))
	out = r.mustRegistry(t, "ls", "--discover", "0")
	if strings.Contains(out, "gone-1") || !strings.Contains(out, "_legacy") || !strings.Contains(out, "4 registrations of 3 instances for 3 subjects") {
		t.Fatalf("after the prune, want gone-1 removed and the rest kept:\n%s", out)
	}

	out = r.mustRegistry(t, "prune", "--instance", "_legacy", "--force")
	wantRows(t, "prune --instance _legacy --force", out, row("removed", "trigger.PRE_DELETE.DISK", "_legacy", "old_fn", "ago)"))
	if _, err := r.kv.Get(context.Background(), "PRE_DELETE.DISK"); err == nil {
		t.Errorf("PRE_DELETE.DISK still in the registry after its last registration was pruned with --force")
	}
	out = r.mustRegistry(t, "prune", "--instance", "beta")
	wantRows(t, "prune --instance beta", out,
		row("removed", "trigger.PRE_CREATE.NETWORK", "beta", "deny_net", "ago)"),
		row("kept", "trigger.PRE_AUTH.*", "beta", "audit_auth", "(--force removes it)"),
	)
}

func TestRegistryUsage(t *testing.T) {
	r := newRegistryRig(t)
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"ls", "extra"},
		{"ls", "--force"},
		{"prune"},
		{"prune", "--dry-run"},
		{"prune", "--older-than", "-1h"},
	} {
		_, _, err := r.registry(args...)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("registry %v: %v, want a usage error (exit 2)", args, err)
		}
	}
}
