package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// denyFn is a PRE function that refuses everything.
func denyFn(ref, typ string, opts ...string) worker.Function {
	return fn(ref, typ, opts, 0, func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "DENIED", ErrorMessage: ref}, nil
	})
}

// registryKV opens the registry bucket of the default prefix on s.
func registryKV(t *testing.T, s *server.Server) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "TRIGGER_REGISTRY", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// registered returns the registry as key -> instance -> refs.
func registered(t *testing.T, kv jetstream.KeyValue) map[string]map[string][]string {
	t.Helper()
	regs, err := worker.ListRegistry(context.Background(), kv)
	if err != nil {
		t.Fatalf("ListRegistry: %v", err)
	}
	out := map[string]map[string][]string{}
	for _, r := range regs {
		if out[r.Key] == nil {
			out[r.Key] = map[string][]string{}
		}
		out[r.Key][r.Instance] = r.Functions
	}
	return out
}

func sameRegistry(got, want map[string]map[string][]string) bool {
	return maps.EqualFunc(got, want, func(a, b map[string][]string) bool {
		return maps.EqualFunc(a, b, slices.Equal[[]string])
	})
}

// newWorker builds a worker with the registry on its own connection to s.
func newWorker(t *testing.T, s *server.Server, instance string, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w := proctest.NewWorker(t, natstest.Connect(t, s), worker.Config{Registry: true, Instance: instance}, fns...)
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func reload(t *testing.T, w *worker.Worker, fns ...worker.Function) {
	t.Helper()
	if err := w.Replace(context.Background(), fns...); err != nil {
		t.Fatalf("Replace: %v", err)
	}
}

func decideCode(t *testing.T, s *server.Server, typ, option string) string {
	t.Helper()
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Decide(context.Background(), typ, option, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Code
}

// TestRegistryWorkerRemovesOnlyItsOwn: a worker that starts or reloads
// without a function removes its own registration for it and never another
// worker's, so once all have stopped a subject one of them still registers
// refuses (NO_WORKER), and only one nobody registers is allowed.
func TestRegistryWorkerRemovesOnlyItsOwn(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	ctx := context.Background()
	a := newWorker(t, s, "worker-a", denyFn("deny_net", "PRE_CREATE", "NETWORK"))
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A worker with no functions at all (a mistyped scripts dir).
	b := newWorker(t, s, "worker-b")
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	kv := registryKV(t, s)
	want := map[string]map[string][]string{"PRE_CREATE.NETWORK": {"worker-a": {"deny_net"}}}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after an empty worker started: %v, want %v", got, want)
	}

	reload(t, b, denyFn("deny_net", "PRE_CREATE", "NETWORK"), denyFn("deny_disk", "PRE_DELETE", "DISK"))
	want = map[string]map[string][]string{
		"PRE_CREATE.NETWORK": {"worker-a": {"deny_net"}, "worker-b": {"deny_net"}},
		"PRE_DELETE.DISK":    {"worker-b": {"deny_disk"}},
	}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after b's reload: %v, want %v", got, want)
	}
	// A reload after a syntax error: b has nothing left.
	reload(t, b)
	want = map[string]map[string][]string{"PRE_CREATE.NETWORK": {"worker-a": {"deny_net"}}}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after b's empty reload: %v, want %v", got, want)
	}
	// a's function is removed from its config: the key goes.
	reload(t, a, denyFn("deny_disk", "PRE_DELETE", "DISK"))
	want = map[string]map[string][]string{"PRE_DELETE.DISK": {"worker-a": {"deny_disk"}}}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after a's reload: %v, want %v", got, want)
	}

	for _, w := range []*worker.Worker{a, b} {
		if err := w.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Errorf("after the stop: %v, want %v (a stop leaves the registrations)", got, want)
	}
	if code := decideCode(t, s, "PRE_DELETE", "DISK"); code != event.CodeNoWorker {
		t.Errorf("Decide(PRE_DELETE, DISK) with the fleet stopped: %s, want %s", code, event.CodeNoWorker)
	}
	if code := decideCode(t, s, "PRE_CREATE", "NETWORK"); code != event.CodeNoTrigger {
		t.Errorf("Decide(PRE_CREATE, NETWORK), no longer registered: %s, want %s", code, event.CodeNoTrigger)
	}
}

// TestRegistryConcurrentWorkers: workers that start, and then reload, at
// the same time keep each other's registrations of one key.
func TestRegistryConcurrentWorkers(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	const n = 8
	workers := make([]*worker.Worker, n)
	for i := range workers {
		workers[i] = newWorker(t, s, fmt.Sprintf("w%d", i), denyFn(fmt.Sprintf("deny_%d", i), "PRE_CREATE", "NETWORK"))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, w := range workers {
		wg.Go(func() { errs[i] = w.Start(context.Background()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	kv := registryKV(t, s)
	want := map[string]map[string][]string{"PRE_CREATE.NETWORK": {}}
	for i := range n {
		want["PRE_CREATE.NETWORK"][fmt.Sprintf("w%d", i)] = []string{fmt.Sprintf("deny_%d", i)}
	}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after %d concurrent starts: %v, want %v", n, got, want)
	}
	entry, err := kv.Get(context.Background(), "PRE_CREATE.NETWORK")
	if err != nil {
		t.Fatal(err)
	}
	var e worker.RegistryEntry
	if err := json.Unmarshal(entry.Value(), &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Functions) != n {
		t.Errorf("functions of the key = %v, want the %d refs of every instance", e.Functions, n)
	}

	// Half of them reload to nothing at once, the others refresh their
	// registration at the same time.
	for i, w := range workers {
		wg.Go(func() {
			var fns []worker.Function
			if i%2 == 1 {
				fns = []worker.Function{denyFn(fmt.Sprintf("deny_%d", i), "PRE_CREATE", "NETWORK")}
			}
			errs[i] = w.Replace(context.Background(), fns...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 2 {
		delete(want["PRE_CREATE.NETWORK"], fmt.Sprintf("w%d", i))
	}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after concurrent reloads: %v, want %v", got, want)
	}
}

// TestRegistryLegacyKeys: keys written by workers without instance names
// are kept: a new worker adds itself beside one, leaves alone one it has
// no function for, and both still refuse once the fleet is gone.
func TestRegistryLegacyKeys(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	kv := registryKV(t, s)
	ctx := context.Background()
	old := time.Now().Add(-time.Hour).UnixMilli()
	for _, k := range []string{"PRE_CREATE.NETWORK", "PRE_DELETE.DISK"} {
		if _, err := kv.Put(ctx, k, fmt.Appendf(nil, `{"functions":["old_fn"],"updatedMs":%d}`, old)); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorker(t, s, "new-1", denyFn("deny_net", "PRE_CREATE", "NETWORK"))
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]string{
		"PRE_CREATE.NETWORK": {worker.LegacyInstance: {"old_fn"}, "new-1": {"deny_net"}},
		"PRE_DELETE.DISK":    {worker.LegacyInstance: {"old_fn"}},
	}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("registry = %v, want %v", got, want)
	}
	regs, err := worker.ListRegistry(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if r.Instance == worker.LegacyInstance && r.LastSeen.UnixMilli() != old {
			t.Errorf("legacy registration of %s last seen %v, want its updatedMs %v", r.Key, r.LastSeen, time.UnixMilli(old))
		}
	}
	reload(t, w)
	delete(want["PRE_CREATE.NETWORK"], "new-1")
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("after an empty reload: %v, want %v", got, want)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, opt := range [][2]string{{"PRE_CREATE", "NETWORK"}, {"PRE_DELETE", "DISK"}} {
		if code := decideCode(t, s, opt[0], opt[1]); code != event.CodeNoWorker {
			t.Errorf("Decide(%s, %s) = %s, want %s", opt[0], opt[1], code, event.CodeNoWorker)
		}
	}
}

// TestRegistryRestartUnderSameInstance: a process restarted under a
// configured instance name removes what its previous run registered and it
// no longer has, and nothing of other instances.
func TestRegistryRestartUnderSameInstance(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	ctx := context.Background()
	first := newWorker(t, s, "fixed", denyFn("deny_net", "PRE_CREATE", "NETWORK"), denyFn("deny_disk", "PRE_DELETE", "DISK"))
	other := newWorker(t, s, "other", denyFn("deny_net", "PRE_CREATE", "NETWORK"))
	for _, w := range []*worker.Worker{first, other} {
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	second := newWorker(t, s, "fixed")
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]string{"PRE_CREATE.NETWORK": {"other": {"deny_net"}}}
	if got := registered(t, registryKV(t, s)); !sameRegistry(got, want) {
		t.Fatalf("registry = %v, want %v", got, want)
	}
}

// TestRegistryRefresh: a running worker rewrites its registrations with a
// new last-seen time, and adds back one a prune removed.
func TestRegistryRefresh(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	ctx := context.Background()
	w := proctest.StartWorker(t, natstest.Connect(t, s), worker.Config{Registry: true, RegistryRefresh: 20 * time.Millisecond},
		denyFn("deny_net", "PRE_CREATE", "NETWORK"))
	kv := registryKV(t, s)
	seen := func() time.Time {
		regs, err := worker.ListRegistry(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range regs {
			if r.Instance == w.Instance() {
				return r.LastSeen
			}
		}
		return time.Time{}
	}
	first := seen()
	if first.IsZero() {
		t.Fatalf("instance %s not registered", w.Instance())
	}
	natstest.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if s := seen(); !s.After(first) {
			return fmt.Errorf("last seen still %v", s)
		}
		return nil
	})
	res, err := worker.PruneRegistry(ctx, kv, worker.PruneOptions{Instance: w.Instance(), Force: true})
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("prune = %+v, %v, want the one registration removed", res, err)
	}
	natstest.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if seen().IsZero() {
			return errors.New("not registered again yet")
		}
		return nil
	})
}

func TestRegistryBadInstance(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	for _, name := range []string{worker.LegacyInstance, "-x", "a b", "a.b/c", strings.Repeat("x", 129)} {
		_, err := worker.New(natstest.Connect(t, s), worker.Config{Instance: name})
		if !errors.Is(err, worker.ErrBadInstance) {
			t.Errorf("New with instance %q: %v, want ErrBadInstance", name, err)
		}
	}
	a, b := worker.DefaultInstance(), worker.DefaultInstance()
	if a == b {
		t.Errorf("DefaultInstance returned %q twice", a)
	}
	for _, name := range []string{a, "node-1.example.com", "w_1"} {
		if _, err := worker.New(natstest.Connect(t, s), worker.Config{Instance: name}); err != nil {
			t.Errorf("New with instance %q: %v", name, err)
		}
	}
}

// putEntry writes a registry value whose instances were last seen at the
// given times.
func putEntry(t *testing.T, kv jetstream.KeyValue, key string, seen map[string]time.Time) {
	t.Helper()
	e := worker.RegistryEntry{Instances: map[string]worker.RegistryInstance{}}
	for name, at := range seen {
		e.Instances[name] = worker.RegistryInstance{Functions: []string{"fn_" + name}, SeenMs: at.UnixMilli()}
	}
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
}

func regNames(regs []worker.Registration) []string {
	var out []string
	for _, r := range regs {
		out = append(out, r.Key+"/"+r.Instance)
	}
	slices.Sort(out)
	return out
}

// TestPruneRegistry: a prune removes the registrations it selects, by age
// or instance, but keeps the last registration of a key unless forced, so
// that a prune never turns a refusal into an allow; a dry run changes
// nothing.
func TestPruneRegistry(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	kv := registryKV(t, s)
	ctx := context.Background()
	now := time.Now()
	day := now.Add(-24 * time.Hour)
	fill := func() {
		putEntry(t, kv, "PRE_CREATE.NETWORK", map[string]time.Time{"gone": now.Add(-48 * time.Hour), "live": now})
		putEntry(t, kv, "PRE_CREATE.SERVER", map[string]time.Time{"gone": now.Add(-48 * time.Hour), "gone2": now.Add(-30 * time.Hour)})
		if _, err := kv.Put(ctx, "PRE_DELETE.DISK", fmt.Appendf(nil, `{"functions":["old"],"updatedMs":%d}`, now.Add(-72*time.Hour).UnixMilli())); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	all := []string{"PRE_CREATE.NETWORK/gone", "PRE_CREATE.NETWORK/live", "PRE_CREATE.SERVER/gone", "PRE_CREATE.SERVER/gone2", "PRE_DELETE.DISK/_legacy"}

	if _, err := worker.PruneRegistry(ctx, kv, worker.PruneOptions{}); !errors.Is(err, worker.ErrPruneSelectsAll) {
		t.Errorf("prune selecting everything: %v, want ErrPruneSelectsAll", err)
	}

	res, err := worker.PruneRegistry(ctx, kv, worker.PruneOptions{Before: day, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{"PRE_CREATE.NETWORK/gone", "PRE_CREATE.SERVER/gone"}
	wantKept := []string{"PRE_CREATE.SERVER/gone2", "PRE_DELETE.DISK/_legacy"}
	if !slices.Equal(regNames(res.Removed), wantRemoved) || !slices.Equal(regNames(res.Kept), wantKept) {
		t.Errorf("dry run: removed %v kept %v, want %v and %v", regNames(res.Removed), regNames(res.Kept), wantRemoved, wantKept)
	}
	regs, _ := worker.ListRegistry(ctx, kv)
	if got := regNames(regs); !slices.Equal(got, all) {
		t.Fatalf("after a dry run: %v, want %v unchanged", got, all)
	}

	res, err = worker.PruneRegistry(ctx, kv, worker.PruneOptions{Before: day})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(regNames(res.Removed), wantRemoved) || !slices.Equal(regNames(res.Kept), wantKept) {
		t.Errorf("prune: removed %v kept %v, want %v and %v", regNames(res.Removed), regNames(res.Kept), wantRemoved, wantKept)
	}
	regs, _ = worker.ListRegistry(ctx, kv)
	if got, want := regNames(regs), []string{"PRE_CREATE.NETWORK/live", "PRE_CREATE.SERVER/gone2", "PRE_DELETE.DISK/_legacy"}; !slices.Equal(got, want) {
		t.Fatalf("after the prune: %v, want %v", got, want)
	}
	for _, opt := range [][2]string{{"PRE_CREATE", "SERVER"}, {"PRE_DELETE", "DISK"}} {
		if code := decideCode(t, s, opt[0], opt[1]); code != event.CodeNoWorker {
			t.Errorf("Decide(%s, %s) after the prune = %s, want %s", opt[0], opt[1], code, event.CodeNoWorker)
		}
	}

	res, err = worker.PruneRegistry(ctx, kv, worker.PruneOptions{Instance: worker.LegacyInstance, Force: true})
	if err != nil || !slices.Equal(regNames(res.Removed), []string{"PRE_DELETE.DISK/_legacy"}) {
		t.Errorf("prune of the legacy instance = %+v, %v", res, err)
	}
	res, err = worker.PruneRegistry(ctx, kv, worker.PruneOptions{Before: day, Force: true})
	if err != nil || !slices.Equal(regNames(res.Removed), []string{"PRE_CREATE.SERVER/gone2"}) || len(res.Kept) != 0 {
		t.Errorf("forced prune = %+v, %v", res, err)
	}
	regs, _ = worker.ListRegistry(ctx, kv)
	if got, want := regNames(regs), []string{"PRE_CREATE.NETWORK/live"}; !slices.Equal(got, want) {
		t.Fatalf("after the forced prunes: %v, want %v", got, want)
	}
	if code := decideCode(t, s, "PRE_CREATE", "SERVER"); code != event.CodeNoTrigger {
		t.Errorf("Decide(PRE_CREATE, SERVER) after the forced prune = %s, want %s", code, event.CodeNoTrigger)
	}
}

// TestRegistryBucketReplicas: the first worker creates the registry bucket
// with RegistryReplicas; a worker started later with fewer uses the bucket
// as it is, rather than scale it down as an update would.
func TestRegistryBucketReplicas(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3, natstest.WithJetStream())
	start := func(s *server.Server, instance string, replicas int) {
		t.Helper()
		proctest.StartWorkerWith(t, proctest.WorkerOptions{StartTimeout: 2 * time.Minute}, natstest.Connect(t, s),
			worker.Config{Registry: true, Instance: instance, RegistryReplicas: replicas}, denyFn("deny", "PRE_CREATE", "SERVER"))
	}
	js, err := jetstream.New(natstest.Connect(t, servers[2]))
	if err != nil {
		t.Fatal(err)
	}
	replicas := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := js.Stream(ctx, "KV_TRIGGER_REGISTRY")
		if err != nil {
			t.Fatalf("registry stream: %v", err)
		}
		return st.CachedInfo().Config.Replicas
	}

	start(servers[0], "first", 3)
	if got := replicas(); got != 3 {
		t.Fatalf("registry bucket created with %d replicas, want 3", got)
	}
	start(servers[1], "second", 0)
	if got := replicas(); got != 3 {
		t.Fatalf("after a worker with 1 replica started: registry bucket has %d replicas, want 3 still", got)
	}
	kv := registryKV(t, servers[2])
	want := map[string]map[string][]string{"PRE_CREATE.SERVER": {"first": {"deny"}, "second": {"deny"}}}
	if got := registered(t, kv); !sameRegistry(got, want) {
		t.Fatalf("registry = %v, want %v", got, want)
	}
}

// TestRegistryWriteRetriedSoon: a worker whose registration write fails
// counts it and retries it soon, not at the next refresh (an hour here):
// until it is written, watching clients answer NO_TRIGGER for its subjects.
func TestRegistryWriteRetriedSoon(t *testing.T) {
	t.Parallel()
	users := func(canWrite bool) []*server.User {
		w := &server.User{Username: "worker", Password: "w", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}}}}
		if !canWrite {
			w.Permissions.Publish.Deny = []string{"$KV.TRIGGER_REGISTRY.>"}
		}
		return []*server.User{w, {Username: "admin", Password: "a"}}
	}
	var base *server.Options // before the server set its defaults, for the reload
	s := natstest.RunServer(t, natstest.WithJetStream(), natstest.WithOptions(func(o *server.Options) {
		o.Users = users(false)
		base = o.Clone()
	}))
	ctx := context.Background()
	metrics, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := proctest.NewWorker(t, natstest.Connect(t, s, nats.UserInfo("worker", "w")),
		worker.Config{Registry: true, RegistryRefresh: time.Hour, Metrics: metrics},
		denyFn("deny_net", "PRE_CREATE", "NETWORK"))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	// The refused publish is never acknowledged: the deadline ends the wait.
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := w.Start(sctx); err == nil {
		t.Fatal("Start: no error, want the registry write refused")
	}
	if v := testutil.ToFloat64(metrics.RegistryWriteFailures); v < 1 {
		t.Fatalf("trigger_registry_write_failures_total = %v, want >= 1", v)
	}

	// Write permission granted: the key appears long before the hour (a
	// retry that began before the reload ends after 30s).
	base.Users = users(true)
	if err := s.ReloadOptions(base); err != nil {
		t.Fatalf("ReloadOptions: %v", err)
	}
	kv, err := jetstream.New(natstest.Connect(t, s, nats.UserInfo("admin", "a")))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kv.KeyValue(ctx, "TRIGGER_REGISTRY")
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 90*time.Second, 20*time.Millisecond, func() error {
		want := map[string]map[string][]string{"PRE_CREATE.NETWORK": {w.Instance(): {"deny_net"}}}
		if got := registered(t, reg); !sameRegistry(got, want) {
			return fmt.Errorf("registry = %v, want %v", got, want)
		}
		return nil
	})
}
