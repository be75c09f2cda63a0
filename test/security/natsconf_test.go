package security_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// deployUsers are the users of deploy/nats/nats-server.conf, with the
// variable that holds each password and the password the tests give it.
var deployUsers = []struct{ user, variable, password string }{
	{"orchestrator", "TRIGGERBUS_ORCHESTRATOR_PASSWORD", "orchestrator-pw-8f3a"},
	{"trigger-worker", "TRIGGERBUS_WORKER_PASSWORD", "worker-pw-2c71"},
	{"fco-api", "TRIGGERBUS_FCO_API_PASSWORD", "fco-api-pw-90be"},
	{"trigger-admin", "TRIGGERBUS_ADMIN_PASSWORD", "admin-pw-4d0c"},
	{"trigger-deployer", "TRIGGERBUS_DEPLOYER_PASSWORD", "deployer-pw-51ad"},
	{"sys", "TRIGGERBUS_SYS_PASSWORD", "sys-pw-77e1"},
}

func password(t testing.TB, user string) string {
	t.Helper()
	for _, u := range deployUsers {
		if u.user == user {
			return u.password
		}
	}
	t.Fatalf("no user %q in deploy/nats/nats-server.conf", user)
	return ""
}

// deployServer starts a NATS server from deploy/nats/nats-server.conf
// (server.ProcessConfigFile), with the password variables defined and the
// deployment's port and store directory replaced by a random loopback port
// and a temporary directory. It is shut down when the test ends.
func deployServer(t testing.TB) *server.Server {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(proctest.ModuleRoot(t), "deploy", "nats", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var vars strings.Builder
	for _, u := range deployUsers {
		fmt.Fprintf(&vars, "%s = %q\n", u.variable, u.password)
	}
	path := proctest.WriteFile(t, t.TempDir(), "nats-server.conf", vars.String()+string(src))
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("deploy/nats/nats-server.conf: %v", err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new server from deploy/nats/nats-server.conf: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server from deploy/nats/nats-server.conf not ready")
	}
	return s
}

// connectAs connects to s as user, with the password of the deployment.
func connectAs(t testing.TB, s *server.Server, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), append([]nats.Option{nats.UserInfo(user, password(t, user)), nats.MaxReconnects(0)}, opts...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// verdict flushes nc and returns the permissions violation the server
// reported for what was just done on it, or nil. The server answers a
// refused publish or subscription with -ERR before the flush's PONG, and
// the client records it before the flush returns.
func verdict(nc *nats.Conn) error {
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := nc.LastError(); err != nil {
		if errors.Is(err, nats.ErrPermissionViolation) {
			return err
		}
		return fmt.Errorf("not a permissions violation: %w", err)
	}
	return nil
}

func sub(subject string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error {
		_, err := nc.Subscribe(subject, func(*nats.Msg) {})
		return err
	}
}

func qsub(subject, queue string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error {
		_, err := nc.QueueSubscribe(subject, queue, func(*nats.Msg) {})
		return err
	}
}

func pub(subject string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error { return nc.Publish(subject, []byte(`{}`)) }
}

// TestDeployConfigPermissions starts a server from the example config of
// deploy/nats and checks its permission matrix, one fresh connection per
// case: what each user may and may not publish and subscribe to, with and
// without the fleet's queue group.
func TestDeployConfigPermissions(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	tests := []struct {
		name    string
		user    string
		do      func(*nats.Conn) error
		allowed bool
	}{
		// Orchestrator services: publish events, ask PRE, read replies.
		{"orchestrator publishes a POST event", "orchestrator", pub("trigger.POST_CREATE.SERVER"), true},
		{"orchestrator publishes a PRE request", "orchestrator", pub("trigger.PRE_CREATE.SERVER"), true},
		{"orchestrator subscribes to its replies", "orchestrator", sub("_INBOX.>"), true},
		{"orchestrator reads the registry bucket", "orchestrator", pub("$JS.API.STREAM.INFO.KV_TRIGGER_REGISTRY"), true},
		{"orchestrator reads a registry key", "orchestrator", pub("$JS.API.DIRECT.GET.KV_TRIGGER_REGISTRY.$KV.TRIGGER_REGISTRY.PRE_CREATE.SERVER"), true},
		{"orchestrator answers a PRE request (subscribes)", "orchestrator", sub("trigger.PRE_CREATE.SERVER"), false},
		{"orchestrator answers a PRE request (in the workers' queue group)", "orchestrator", qsub("trigger.PRE_CREATE.SERVER", "trigger-workers"), false},
		{"orchestrator listens to every trigger", "orchestrator", sub("trigger.>"), false},
		{"orchestrator forges a reply", "orchestrator", pub("_INBOX.forged.reply"), false},
		{"orchestrator forges a dead letter", "orchestrator", pub("trigger.dlq.POST_CREATE.SERVER"), false},
		{"orchestrator forges a decision log record", "orchestrator", pub("trigger.decisions.PRE_CREATE.SERVER"), false},
		{"orchestrator forges a registry entry", "orchestrator", pub("$KV.TRIGGER_REGISTRY.PRE_CREATE.SERVER"), false},
		{"orchestrator deletes the event stream", "orchestrator", pub("$JS.API.STREAM.DELETE.TRIGGER_EVENTS"), false},
		{"orchestrator reads the event stream", "orchestrator", pub("$JS.API.STREAM.MSG.GET.TRIGGER_EVENTS"), false},
		{"orchestrator calls the orchestrator API bridge", "orchestrator", pub("fco.api.admin.deleteServer"), false},
		{"orchestrator announces a service", "orchestrator", sub("$SRV.>"), false},

		// Workers: the fleet's queue group only, JetStream for their own objects.
		{"worker queue-subscribes in trigger-workers", "trigger-worker", qsub("trigger.PRE_CREATE.SERVER", "trigger-workers"), true},
		{"worker queue-subscribes a wildcard in trigger-workers", "trigger-worker", qsub("trigger.POST_CREATE.*", "trigger-workers"), true},
		{"worker queue-subscribes in another group", "trigger-worker", qsub("trigger.PRE_CREATE.SERVER", "impostors"), false},
		{"worker subscribes outside a queue group", "trigger-worker", sub("trigger.PRE_CREATE.SERVER"), false},
		{"worker listens to every trigger", "trigger-worker", sub("trigger.>"), false},
		{"worker announces its service", "trigger-worker", sub("$SRV.PING"), true},
		{"worker serves its status endpoint", "trigger-worker", sub("trigger.worker.abc123.status"), true},
		{"worker publishes an event a function causes", "trigger-worker", pub("trigger.POST_CREATE.SERVER"), true},
		{"worker calls the orchestrator API bridge", "trigger-worker", pub("fco.api.admin.listServers"), true},
		{"worker writes a dead letter", "trigger-worker", pub("trigger.dlq.POST_CREATE.SERVER"), true},
		{"worker writes a decision log record", "trigger-worker", pub("trigger.decisions.PRE_CREATE.SERVER"), true},
		{"worker sets up the decision stream", "trigger-worker", pub("$JS.API.STREAM.CREATE.TRIGGER_DECISIONS"), true},
		{"worker reads the decision log", "trigger-worker", pub("$JS.API.CONSUMER.CREATE.TRIGGER_DECISIONS"), false},
		{"worker sets up the archive", "trigger-worker", pub("$JS.API.STREAM.CREATE.TRIGGER_ARCHIVE"), true},
		{"worker reads the archive's state", "trigger-worker", pub("$JS.API.STREAM.INFO.TRIGGER_ARCHIVE"), true},
		{"worker reads the archive", "trigger-worker", pub("$JS.API.CONSUMER.CREATE.TRIGGER_ARCHIVE"), false},
		{"worker deletes the archive", "trigger-worker", pub("$JS.API.STREAM.DELETE.TRIGGER_ARCHIVE"), false},
		{"worker writes a script's dataStore map", "trigger-worker", pub("$KV.TRIGGER_DATASTORE.backup_on_job"), true},
		{"worker reads a script's dataStore map", "trigger-worker", pub("$JS.API.DIRECT.GET.KV_TRIGGER_DATASTORE.$KV.TRIGGER_DATASTORE.backup_on_job"), true},
		{"orchestrator writes a script's dataStore map", "orchestrator", pub("$KV.TRIGGER_DATASTORE.backup_on_job"), false},
		{"worker acks a durable event", "trigger-worker", pub("$JS.ACK.TRIGGER_EVENTS.trigger-workers.1.2.3.4.5"), true},
		{"worker forges a reply it was not asked for", "trigger-worker", pub("_INBOX.forged.reply"), false},
		{"worker deletes the event stream", "trigger-worker", pub("$JS.API.STREAM.DELETE.TRIGGER_EVENTS"), false},
		{"worker creates another stream", "trigger-worker", pub("$JS.API.STREAM.CREATE.OTHER"), false},
		{"worker publishes outside its subjects", "trigger-worker", pub("billing.invoice.created"), false},

		// The orchestrator API service and operators never see trigger requests.
		{"fco-api serves the API bridge", "fco-api", qsub("fco.api.admin.listServers", "api"), true},
		{"fco-api answers a PRE request", "fco-api", qsub("trigger.PRE_CREATE.SERVER", "trigger-workers"), false},
		{"fco-api publishes an event", "fco-api", pub("trigger.POST_CREATE.SERVER"), false},
		{"fco-api forges a reply", "fco-api", pub("_INBOX.forged.reply"), false},
		{"admin uses the JetStream API", "trigger-admin", pub("$JS.API.STREAM.INFO.TRIGGER_DLQ"), true},
		{"admin reads the decision log", "trigger-admin", pub("$JS.API.CONSUMER.CREATE.TRIGGER_DECISIONS"), true},
		{"admin replays the archive (flow control)", "trigger-admin", pub("$JS.FC.TRIGGER_ARCHIVE.abc.1"), true},
		{"admin republishes a dead letter", "trigger-admin", pub("trigger.POST_CREATE.SERVER"), true},
		{"admin prunes a registry key", "trigger-admin", pub("$KV.TRIGGER_REGISTRY.PRE_CREATE.SERVER"), true},
		{"admin asks which workers answer", "trigger-admin", pub("$SRV.PING.triggerbus"), true},
		{"admin answers discovery (subscribes)", "trigger-admin", sub("$SRV.PING.triggerbus"), false},
		{"admin answers a PRE request", "trigger-admin", qsub("trigger.PRE_CREATE.SERVER", "trigger-workers"), false},
		{"admin listens to every trigger", "trigger-admin", sub("trigger.>"), false},

		// Deployers: the function bundle's buckets, nothing else; workers
		// cannot write them.
		{"deployer stores a revision", "trigger-deployer", pub("$O.TRIGGER_FUNCTIONS.M.MS50YXIuZ3o="), true},
		{"deployer activates a revision", "trigger-deployer", pub("$KV.TRIGGER_FUNCTIONS_HEAD.active"), true},
		{"deployer publishes an event", "trigger-deployer", pub("trigger.POST_CREATE.SERVER"), false},
		{"deployer answers a PRE request", "trigger-deployer", qsub("trigger.PRE_CREATE.SERVER", "trigger-workers"), false},
		{"deployer deletes the function store", "trigger-deployer", pub("$JS.API.STREAM.DELETE.OBJ_TRIGGER_FUNCTIONS"), false},
		{"deployer reads the event stream", "trigger-deployer", pub("$JS.API.STREAM.MSG.GET.TRIGGER_EVENTS"), false},
		{"deployer writes a registry key", "trigger-deployer", pub("$KV.TRIGGER_REGISTRY.PRE_CREATE.SERVER"), false},
		{"worker stores a revision", "trigger-worker", pub("$O.TRIGGER_FUNCTIONS.M.MS50YXIuZ3o="), false},
		{"worker reads a revision", "trigger-worker", pub("$JS.API.DIRECT.GET.OBJ_TRIGGER_FUNCTIONS.$O.TRIGGER_FUNCTIONS.M.MS50YXIuZ3o="), true},
		{"worker watches the active revision", "trigger-worker", pub("$JS.API.CONSUMER.CREATE.KV_TRIGGER_FUNCTIONS_HEAD.w1.$KV.TRIGGER_FUNCTIONS_HEAD.active"), true},
		{"worker creates the function store", "trigger-worker", pub("$JS.API.STREAM.CREATE.OBJ_TRIGGER_FUNCTIONS"), false},
		{"worker removes old revisions", "trigger-worker", pub("$JS.API.STREAM.PURGE.OBJ_TRIGGER_FUNCTIONS"), false},
		{"worker activates a revision", "trigger-worker", pub("$KV.TRIGGER_FUNCTIONS_HEAD.active"), false},
		{"orchestrator activates a revision", "orchestrator", pub("$KV.TRIGGER_FUNCTIONS_HEAD.active"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := connectAs(t, s, tt.user, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
			if err := tt.do(nc); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			err := verdict(nc)
			switch {
			case tt.allowed && err != nil:
				t.Errorf("%s as %s: refused (%v), want allowed", tt.name, tt.user, err)
			case !tt.allowed && err == nil:
				t.Errorf("%s as %s: allowed, want a permissions violation", tt.name, tt.user)
			case !tt.allowed && !errors.Is(err, nats.ErrPermissionViolation):
				t.Errorf("%s as %s: %v, want a permissions violation", tt.name, tt.user, err)
			}
		})
	}

	t.Run("no anonymous or wrong-password connection", func(t *testing.T) {
		for _, opts := range [][]nats.Option{nil, {nats.UserInfo("orchestrator", "wrong")}, {nats.UserInfo("nobody", "x")}} {
			nc, err := nats.Connect(s.ClientURL(), append(opts, nats.MaxReconnects(0))...)
			if err == nil {
				nc.Close()
				t.Errorf("connected with %d options, want an authorization violation", len(opts))
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect: %v, want an authorization violation", err)
			}
		}
	})
}

// TestDeployConfigImpostor runs a worker under the example config and an
// impostor that tries to answer its PRE requests: with the orchestrator's
// credentials, and with the workers' credentials outside their queue
// group. The server refuses both subscriptions, so every decision is the
// worker's; the impostor never even sees a request. Another account (the
// system account) sees no trigger traffic at all.
func TestDeployConfigImpostor(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	logs := proctest.NewLogCapture()
	opts, err := natsconn.Options(natsconn.Config{User: "trigger-worker", Password: password(t, "trigger-worker")},
		natsconn.Events{Logger: logs.Logger})
	if err != nil {
		t.Fatal(err)
	}
	wnc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	proctest.StartWorker(t, wnc, worker.Config{Logger: logs.Logger, Registry: true}, denyBig())

	var mu sync.Mutex
	var seen []string
	impostorHandler := func(m *nats.Msg) {
		mu.Lock()
		seen = append(seen, m.Subject)
		mu.Unlock()
		_ = m.Respond([]byte(`{"id":"forged","allowed":true,"code":"IMPOSTOR"}`))
	}
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	orch := connectAs(t, s, "orchestrator", quiet)
	if _, err := orch.QueueSubscribe("trigger.PRE_CREATE.*", "trigger-workers", impostorHandler); err != nil {
		t.Fatal(err)
	}
	if err := verdict(orch); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("orchestrator's queue subscription to trigger.PRE_CREATE.*: %v, want a permissions violation", err)
	}
	rogue := connectAs(t, s, "trigger-worker", quiet)
	if _, err := rogue.Subscribe("trigger.PRE_CREATE.SERVER", impostorHandler); err != nil {
		t.Fatal(err)
	}
	if err := verdict(rogue); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("a worker's plain subscription to trigger.PRE_CREATE.SERVER: %v, want a permissions violation", err)
	}
	sys := connectAs(t, s, "sys")
	sysSub, err := sys.SubscribeSync("trigger.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := verdict(sys); err != nil {
		t.Fatal(err)
	}

	c, err := client.New(connectAs(t, s, "orchestrator"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
		cancel()
		if err != nil || d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Function != "deny_big" {
			t.Fatalf("Decide = %+v, %v, want the worker's QUOTA_EXCEEDED", d, err)
		}
	}
	// The orchestrator may watch the registry: Decide then skips subjects
	// without functions.
	natstest.CheckFor(t, waitShort, 10*time.Millisecond, func() error {
		if !c.RegistryWatched() {
			return errors.New("the orchestrator's registry watch is not current")
		}
		return nil
	})
	if d, err := c.Decide(context.Background(), "PRE_DELETE", "DISK", nil); err != nil || !d.Allowed || d.Code != event.CodeNoTrigger {
		t.Fatalf("Decide(PRE_DELETE, DISK) = %+v, %v, want NO_TRIGGER", d, err)
	}
	if err := sys.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := sysSub.Pending(); n != 0 {
		t.Errorf("the system account received %d trigger messages", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Errorf("the impostors received %d requests: %v", len(seen), seen)
	}
	if strings.Contains(strings.ToLower(logs.String()), "permissions violation") {
		t.Errorf("the worker hit a permissions violation:\n%s", logs.String())
	}
}

// recordScript is the durable POST function trigger-worker runs under the
// example config, beside proctest.DenyScript's PRE decision: it reports each
// event through the orchestrator API bridge.
const recordScript = `
function register() return { "record" } end

function record(p)
  if p == nil then
    return { ref = "record", triggerType = "POST_CREATE", triggerOptions = { "ANY" }, api = "TRIGGER" }
  end
  local reply, err = trigger.request("fco.api.admin.recordEvent", { id = p.id }, 2000)
  if reply == nil then error("fco api: " .. tostring(err)) end
  return { exitState = "SUCCESS" }
end
`

// TestDeployConfigEndToEnd runs the trigger-worker binary as the
// trigger-worker user of the example config (durable delivery, the PRE
// registry, service discovery, a function that calls the orchestrator API
// bridge), with an orchestrator service and the API service as their
// users: a PRE decision, a durable POST event handled, and, once the
// worker is stopped, the registry read by the orchestrator (NO_WORKER for
// a subject with functions, NO_TRIGGER for one without). Nobody hits a
// permissions violation.
func TestDeployConfigEndToEnd(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	proctest.WriteFile(t, dir, "record.lua", recordScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{
		"nats.user":     "trigger-worker",
		"delivery.mode": "durable",
	})
	p := startProcess(t, []string{"TRIGGER_NATS_PASSWORD=" + password(t, "trigger-worker")}, "run", "-c", cfg)
	p.WaitReady(t)

	var violations []string
	var vmu sync.Mutex
	record := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		vmu.Lock()
		violations = append(violations, err.Error())
		vmu.Unlock()
	})
	api := connectAs(t, s, "fco-api", record)
	handled := make(chan string, 16)
	if _, err := api.QueueSubscribe("fco.api.admin.recordEvent", "api", func(m *nats.Msg) {
		var v struct{ ID string }
		_ = json.Unmarshal(m.Data, &v)
		handled <- v.ID
		_ = m.Respond([]byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := verdict(api); err != nil {
		t.Fatal(err)
	}
	orch := connectAs(t, s, "orchestrator", record)
	durable, err := client.New(orch, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	d, err := durable.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
	if err != nil || d.Allowed || d.Code != "QUOTA_EXCEEDED" {
		t.Errorf("Decide = %+v, %v, want the function's QUOTA_EXCEEDED", d, err)
	}
	id, err := durable.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatalf("durable Publish as orchestrator: %v", err)
	}
	if got := natstest.ChanRecv(t, handled, waitLong); got != id {
		t.Errorf("the function reported event %q, want %q", got, id)
	}

	p.Stop(t)
	for _, tt := range []struct{ typ, code string }{
		{"PRE_CREATE", event.CodeNoWorker},
		{"PRE_DELETE", event.CodeNoTrigger},
	} {
		d, err := durable.Decide(ctx, tt.typ, "SERVER", nil)
		if err != nil || d.Code != tt.code {
			t.Errorf("Decide(%s) with the worker stopped = %+v, %v, want code %s (the registry read by the orchestrator)", tt.typ, d, err, tt.code)
		}
	}
	if err := verdict(orch); err != nil {
		t.Errorf("orchestrator: %v", err)
	}
	vmu.Lock()
	defer vmu.Unlock()
	if len(violations) > 0 {
		t.Errorf("errors on the orchestrator's or API service's connections: %v", violations)
	}
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(strings.ToLower(line), "permissions violation") {
			t.Errorf("trigger-worker hit a permissions violation: %s", line)
		}
	}
	if i := slices.IndexFunc(strings.Split(p.Stderr(), "\n"), func(l string) bool { return strings.Contains(l, "level=ERROR") }); i >= 0 {
		t.Errorf("trigger-worker logged errors:\n%s", p.Stderr())
	}
}

// TestDeployConfigRegistryTool runs `trigger-worker registry ls` and
// `registry prune` as the trigger-admin user of the example config, while
// a worker runs as trigger-worker: ls lists the worker's registration and
// sees it answer service discovery, prune removes a gone instance's
// registration, and neither hits a permissions violation.
func TestDeployConfigRegistryTool(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	wnc := connectAs(t, s, "trigger-worker")
	proctest.StartWorker(t, wnc, worker.Config{Registry: true, Instance: "deploy-1"}, denyBig())
	gone := proctest.NewWorker(t, connectAs(t, s, "trigger-worker"), worker.Config{Registry: true, Instance: "gone-1"}, denyBig())
	ctx := context.Background()
	if err := gone.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := gone.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	env := []string{"TRIGGER_NATS_USER=trigger-admin", "TRIGGER_NATS_PASSWORD=" + password(t, "trigger-admin")}

	code, out, errOut := run(t, env, "registry", "ls", "--nats-url", s.ClientURL())
	if code != 0 {
		t.Fatalf("registry ls as trigger-admin: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^trigger\.PRE_CREATE\.\*\s+deploy-1\s+deny_big\s.*\syes$`),
		regexp.MustCompile(`(?m)^trigger\.PRE_CREATE\.\*\s+gone-1\s+deny_big\s.*\sno$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("registry ls as trigger-admin: no line matching %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "discovery failed") {
		t.Errorf("registry ls as trigger-admin could not use service discovery:\n%s", out)
	}

	code, out, errOut = run(t, env, "registry", "prune", "--instance", "gone-1", "--nats-url", s.ClientURL())
	if code != 0 || !strings.Contains(out, "removed 1 registrations") {
		t.Fatalf("registry prune as trigger-admin: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(strings.ToLower(out+errOut), "permission") {
		t.Errorf("registry prune as trigger-admin hit a permissions violation:\n%s\n%s", out, errOut)
	}
}

// TestDeployConfigFunctionsTool runs `trigger-worker functions` as the
// trigger-deployer user of the example config: push (creating the
// buckets), a second push, ls, show, diff, activate, pull, and a push
// beyond the history that removes a revision, none of them hitting a
// permissions violation.
func TestDeployConfigFunctionsTool(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{
		"nats.user":      "trigger-deployer",
		"bundle.history": 2,
	})
	env := []string{"TRIGGER_NATS_PASSWORD=" + password(t, "trigger-deployer")}
	for _, args := range [][]string{
		{"push", "-m", "one"},
		{"push", "-m", "two"},
		{"ls"},
		{"show", "1"},
		{"show", "2", "scripts/deny.lua"},
		{"diff", "1", "2"},
		{"activate", "1"},
		{"pull", "1", filepath.Join(t.TempDir(), "one")},
		{"push", "-m", "three"},
	} {
		code, out, errOut := run(t, env, append(append([]string{"functions"}, args...), "-c", cfg)...)
		if code != 0 || strings.Contains(strings.ToLower(out+errOut), "permission") {
			t.Fatalf("functions %v as trigger-deployer: exit %d\n%s\n%s", args, code, out, errOut)
		}
		if args[0] == "push" && args[2] == "three" && !strings.Contains(out, "removed beyond the history of 2: 1") {
			t.Errorf("push beyond the history as trigger-deployer:\n%s", out)
		}
	}
}

// TestDeployConfigBundleWorker: a worker in bundle mode as the
// trigger-worker user of the example config serves the revision the
// trigger-deployer user pushes, then the one it activates, without a
// permissions violation.
func TestDeployConfigBundleWorker(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	deployer := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{"nats.user": "trigger-deployer"})
	deployEnv := []string{"TRIGGER_NATS_PASSWORD=" + password(t, "trigger-deployer")}
	for _, m := range []string{"one", "two"} {
		if code, out, errOut := run(t, deployEnv, "functions", "push", "-m", m, "-c", deployer); code != 0 {
			t.Fatalf("push as trigger-deployer: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	cfg := proctest.WriteWorkerConfig(t, t.TempDir(), s.ClientURL(), "", map[string]any{
		"nats.user":     "trigger-worker",
		"delivery.mode": "durable",
		"bundle.source": "bundle",
	})
	p := startProcess(t, []string{"TRIGGER_NATS_PASSWORD=" + password(t, "trigger-worker")}, "run", "-c", cfg)
	base := p.WaitReady(t)
	waitRevision := func(rev string) {
		t.Helper()
		natstest.CheckFor(t, waitLong, 10*time.Millisecond, func() error {
			body, _, err := httpGet(base + "/metrics")
			if err != nil {
				return err
			}
			if !strings.Contains(body, "\ntrigger_functions_revision "+rev+"\n") {
				return fmt.Errorf("trigger_functions_revision is not %s", rev)
			}
			return nil
		})
	}
	waitRevision("2")
	if code, out, errOut := run(t, deployEnv, "functions", "activate", "1", "-c", deployer); code != 0 {
		t.Fatalf("activate as trigger-deployer: exit %d\n%s\n%s", code, out, errOut)
	}
	waitRevision("1")
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(strings.ToLower(line), "permission") || strings.Contains(line, "level=ERROR") {
			t.Errorf("trigger-worker in bundle mode: %s", line)
		}
	}
}
