package bundle_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/goleak"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func newBundle(t *testing.T, files map[string]string) *bundle.Bundle {
	t.Helper()
	raw := map[string][]byte{}
	for p, s := range files {
		raw[p] = []byte(s)
	}
	b, err := bundle.New(bundle.Manifest{Author: "ops", Message: "test",
		Functions: []bundle.Function{{Ref: "quota", Kind: "lua", TriggerType: "PRE_CREATE", TriggerOptions: []string{"SERVER"}}}}, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func userKey(t *testing.T) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

// signedArchive signs a bundle of files with a new key, encodes it and
// decodes it again; it returns the bundle, the decoded one and the key.
func signedArchive(t *testing.T, files map[string]string) (b, got *bundle.Bundle, pub string) {
	t.Helper()
	b = newBundle(t, files)
	kp, pub := userKey(t)
	if err := b.Sign(kp); err != nil {
		t.Fatal(err)
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got, err = bundle.Decode(data); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return b, got, pub
}

func TestEncodeDecode(t *testing.T) {
	_, got, pub := signedArchive(t, map[string]string{"functions.yaml": "functions: []\n", "scripts/quota.lua": "-- quota\n"})
	if err := bundle.Verify(got, []string{pub}); err != nil {
		t.Fatalf("Verify(decoded) = %v", err)
	}
	if string(got.Files["scripts/quota.lua"]) != "-- quota\n" || got.Manifest.Author != "ops" || len(got.Manifest.Files) != 2 {
		t.Fatalf("decoded = %+v", got.Manifest)
	}
}

func TestNewRefusesPaths(t *testing.T) {
	for _, p := range []string{"../x", "/etc/passwd", "a/../../b", "manifest.json", "a\\b", ""} {
		if _, err := bundle.New(bundle.Manifest{}, map[string][]byte{p: nil}); !errors.Is(err, bundle.ErrInvalid) {
			t.Errorf("New(path %q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestVerify(t *testing.T) {
	kp, pub := userKey(t)
	_, other := userKey(t)
	otherKP, _ := userKey(t)
	files := map[string]string{"functions.yaml": "functions: []\n", "scripts/quota.lua": "return 1\n"}

	signed := func() *bundle.Bundle {
		b := newBundle(t, files)
		if err := b.Sign(kp); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := bundle.Verify(signed(), []string{other, pub}); err != nil {
		t.Fatalf("Verify(signed by a trusted key) = %v", err)
	}
	tests := []struct {
		name    string
		bundle  func() *bundle.Bundle
		trusted []string
		want    error
	}{
		{"unsigned", func() *bundle.Bundle { return newBundle(t, files) }, []string{pub}, bundle.ErrUnsigned},
		{"signed by another key", func() *bundle.Bundle {
			b := newBundle(t, files)
			if err := b.Sign(otherKP); err != nil {
				t.Fatal(err)
			}
			return b
		}, []string{pub}, bundle.ErrUntrustedKey},
		{"no trusted keys", signed, nil, bundle.ErrUntrustedKey},
		{"file changed after signing", func() *bundle.Bundle {
			b := signed()
			b.Files["scripts/quota.lua"] = []byte("return 2\n")
			return b
		}, []string{pub}, bundle.ErrFileMismatch},
		{"file added after signing", func() *bundle.Bundle {
			b := signed()
			b.Files["scripts/extra.lua"] = []byte("return 3\n")
			return b
		}, []string{pub}, bundle.ErrFileMismatch},
		{"file removed after signing", func() *bundle.Bundle {
			b := signed()
			delete(b.Files, "scripts/quota.lua")
			return b
		}, []string{pub}, bundle.ErrFileMismatch},
		{"signature of another bundle", func() *bundle.Bundle {
			b := signed()
			c := newBundle(t, map[string]string{"functions.yaml": "functions: []\n"})
			if err := c.Sign(kp); err != nil {
				t.Fatal(err)
			}
			b.Signature = c.Signature
			return b
		}, []string{pub}, bundle.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := bundle.Verify(tt.bundle(), tt.trusted); !errors.Is(err, tt.want) {
				t.Fatalf("Verify() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyArchiveTampered: a file changed inside a signed archive, with
// or without its hash changed in the manifest, is refused.
func TestVerifyArchiveTampered(t *testing.T) {
	b, got, pub := signedArchive(t, map[string]string{"functions.yaml": "functions: []\n", "scripts/quota.lua": "return 1\n"})
	// The file alone.
	got.Files["scripts/quota.lua"] = []byte("return 9\n")
	if err := bundle.Verify(got, []string{pub}); !errors.Is(err, bundle.ErrFileMismatch) {
		t.Fatalf("Verify(file changed) = %v, want ErrFileMismatch", err)
	}
	// The file and the manifest: a new archive made with the old signature.
	forged, err := bundle.New(b.Manifest, got.Files)
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature = b.Signature
	data, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got, err = bundle.Decode(data); err != nil {
		t.Fatal(err)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("Check(forged) = %v: the forgery is consistent", err)
	}
	if err := bundle.Verify(got, []string{pub}); !errors.Is(err, bundle.ErrBadSignature) {
		t.Fatalf("Verify(file and manifest changed) = %v, want ErrBadSignature", err)
	}
}

func TestReadKey(t *testing.T) {
	seed, pub, err := bundle.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.nk")
	if err := os.WriteFile(path, append([]byte("# comment\n"), seed...), 0o600); err != nil {
		t.Fatal(err)
	}
	kp, err := bundle.ReadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := kp.PublicKey(); got != pub {
		t.Fatalf("ReadKey public key = %s, want %s", got, pub)
	}
	if err := os.WriteFile(path, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.ReadKey(path); err == nil {
		t.Fatal("ReadKey(public key file) = nil error, want one")
	}
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("scripts/a.lua", "-- a\n")
	write("scripts/notes.txt", "not a script\n")
	write("one/check.lua", "-- one\n")
	write("two/check.lua", "-- two\n")
	write("ca.pem", "PEM\n")
	cfgPath := write("config.yaml", fmt.Sprintf(`# comment kept
functions:
  - ref: one
    trigger_type: PRE_CREATE
    trigger_options: [SERVER]
    lua: {file: %[1]s/one/check.lua}
  - ref: two
    trigger_type: PRE_CREATE
    trigger_options: [DISK]
    Lua:
      File: %[1]s/two/check.lua
  - ref: again
    trigger_type: PRE_CREATE
    trigger_options: [NETWORK]
    lua: {file: %[1]s/one/check.lua}
  - ref: hook
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    webhook: {url: "https://example.com/", ca: %[1]s/ca.pem, secret: s3cret}
  - ref: cmd
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec: {command: [/usr/local/bin/check, -v]}
scripts:
  dir: %[1]s/scripts
nats:
  url: nats://127.0.0.1:4222
`, dir))
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range b.Manifest.Files {
		paths = append(paths, f.Path)
	}
	want := []string{"ca/ca.pem", "functions.yaml", "lua/check-2.lua", "lua/check.lua", "scripts/a.lua"}
	if !slices.Equal(paths, want) {
		t.Fatalf("files = %v, want %v", paths, want)
	}
	if !slices.Equal(b.Manifest.Commands, []string{"/usr/local/bin/check"}) {
		t.Errorf("commands = %v", b.Manifest.Commands)
	}

	// Materialised, the definitions load on their own, pointing into the
	// directory.
	out := filepath.Join(t.TempDir(), "b")
	if err := b.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	d, err := config.LoadDefinitions(filepath.Join(out, config.DefinitionsFile))
	if err != nil {
		t.Fatalf("LoadDefinitions: %v\n%s", err, b.Files["functions.yaml"])
	}
	if d.ScriptsDir != filepath.Join(out, "scripts") {
		t.Errorf("scripts dir = %q", d.ScriptsDir)
	}
	for i, wantFile := range map[int]string{0: "lua/check.lua", 1: "lua/check-2.lua", 2: "lua/check.lua"} {
		if d.Functions[i].Lua.File != filepath.Join(out, wantFile) {
			t.Errorf("functions[%d].lua.file = %q, want %s", i, d.Functions[i].Lua.File, wantFile)
		}
	}
	if d.Functions[3].Webhook.CA != filepath.Join(out, "ca/ca.pem") || string(d.Functions[3].Webhook.Secret) != "s3cret" {
		t.Errorf("webhook = %+v", d.Functions[3].Webhook)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "lua/check-2.lua")); string(data) != "-- two\n" {
		t.Errorf("lua/check-2.lua = %q", data)
	}
	if strings.Contains(string(b.Files["functions.yaml"]), "nats") {
		t.Errorf("functions.yaml has keys other than the functions':\n%s", b.Files["functions.yaml"])
	}
}

// store starts a JetStream server and opens the store of prefix trigger.
func store(t *testing.T, history int) (*bundle.Store, jetstream.JetStream) {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t, natstest.WithJetStream()))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	s, err := bundle.Open(context.Background(), js, scheme, bundle.Options{History: history, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func push(t *testing.T, s *bundle.Store, msg string, opts bundle.PushOptions) bundle.PushResult {
	t.Helper()
	b := newBundle(t, map[string]string{"functions.yaml": "# " + msg + "\n"})
	b.Manifest.Message = msg
	res, err := s.Push(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOpenWithoutStore(t *testing.T) {
	nc := natstest.Connect(t, natstest.RunServer(t, natstest.WithJetStream()))
	js, _ := jetstream.New(nc)
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	if _, err := bundle.Open(context.Background(), js, scheme, bundle.Options{}); !errors.Is(err, bundle.ErrNoStore) {
		t.Fatalf("Open(no buckets) = %v, want ErrNoStore", err)
	}
}

func TestPushFetchActivate(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t, 10)
	if rev, err := s.Active(ctx); err != nil || rev != 0 {
		t.Fatalf("Active(empty) = %d, %v", rev, err)
	}
	r1 := push(t, s, "first", bundle.PushOptions{Activate: true})
	if r1.Revision != 1 || !r1.Activated || r1.Active != 1 {
		t.Fatalf("push 1 = %+v", r1)
	}
	r2 := push(t, s, "staged", bundle.PushOptions{})
	if r2.Revision != 2 || r2.Activated || r2.Active != 1 {
		t.Fatalf("push 2 without activate = %+v", r2)
	}
	b, err := s.Fetch(ctx, 2)
	if err != nil || b.Manifest.Message != "staged" || b.Manifest.Revision != 2 || b.Manifest.Created.IsZero() {
		t.Fatalf("Fetch(2) = %+v, %v", b, err)
	}
	if _, err := s.Fetch(ctx, 7); !errors.Is(err, bundle.ErrNoRevision) {
		t.Fatalf("Fetch(7) = %v, want ErrNoRevision", err)
	}
	prev, err := s.Activate(ctx, 2)
	if err != nil || prev != 1 {
		t.Fatalf("Activate(2) = %d, %v", prev, err)
	}
	if _, err := s.Activate(ctx, 9); !errors.Is(err, bundle.ErrNoRevision) {
		t.Fatalf("Activate(9) = %v, want ErrNoRevision", err)
	}
	if rev, _ := s.Active(ctx); rev != 2 {
		t.Fatalf("Active = %d, want 2", rev)
	}
}

func TestConcurrentPushes(t *testing.T) {
	s, _ := store(t, 100)
	const n = 8
	revs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b := newBundle(t, map[string]string{"functions.yaml": fmt.Sprintf("# %d\n", i)})
			res, err := s.Push(context.Background(), b, bundle.PushOptions{Activate: true})
			if err != nil {
				t.Error(err)
			}
			revs[i] = res.Revision
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, rev := range revs {
		if rev != uint64(i+1) {
			t.Fatalf("revisions = %v, want 1..%d each once", revs, n)
		}
	}
	// The newest push wins the activation, whatever order they finished in.
	if rev, _ := s.Active(context.Background()); rev != n {
		t.Fatalf("Active = %d, want %d", rev, n)
	}
}

func TestPruneKeepsActive(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t, 2)
	push(t, s, "1", bundle.PushOptions{Activate: true})
	if _, err := s.Activate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	push(t, s, "2", bundle.PushOptions{})
	push(t, s, "3", bundle.PushOptions{})
	res := push(t, s, "4", bundle.PushOptions{})
	if !slices.Equal(res.Pruned, []uint64{2}) {
		t.Fatalf("pruned = %v, want [2]", res.Pruned)
	}
	revs, err := s.Revisions(ctx)
	if err != nil || !slices.Equal(revs, []uint64{1, 3, 4}) {
		t.Fatalf("Revisions = %v, %v; want [1 3 4]: the newest two and the active one", revs, err)
	}
	// Once another is active, the old one goes at the next push.
	if _, err := s.Activate(ctx, 4); err != nil {
		t.Fatal(err)
	}
	res = push(t, s, "5", bundle.PushOptions{})
	if !slices.Equal(res.Pruned, []uint64{1, 3}) {
		t.Fatalf("pruned = %v, want [1 3]", res.Pruned)
	}
}

func TestNumberingGoesOnWithoutHead(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, 10)
	push(t, s, "1", bundle.PushOptions{Activate: true})
	push(t, s, "2", bundle.PushOptions{})
	kv, err := js.KeyValue(ctx, "TRIGGER_FUNCTIONS_HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, bundle.KeyLatest); err != nil {
		t.Fatal(err)
	}
	if res := push(t, s, "3", bundle.PushOptions{}); res.Revision != 3 {
		t.Fatalf("revision after the head lost its number = %d, want 3 (never reuse a stored one)", res.Revision)
	}
}

func TestFetchTampered(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, 10)
	kp, pub := userKey(t)
	b := newBundle(t, map[string]string{"functions.yaml": "functions: []\n", "scripts/q.lua": "return 1\n"})
	res, err := s.Push(ctx, b, bundle.PushOptions{Sign: func(b *bundle.Bundle) error { return b.Sign(kp) }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Fetch(ctx, res.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Verify(got, []string{pub}); err != nil {
		t.Fatalf("Verify(fetched) = %v", err)
	}
	// Someone with write access to the bucket replaces a script of the
	// signed revision, keeping manifest and signature.
	got.Files["scripts/q.lua"] = []byte("return 2\n")
	data, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, "TRIGGER_FUNCTIONS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, bundle.ObjectName(res.Revision), data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, res.Revision); !errors.Is(err, bundle.ErrFileMismatch) {
		t.Fatalf("Fetch(tampered) = %v, want ErrFileMismatch", err)
	}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t, 10)
	push(t, s, "1", bundle.PushOptions{Activate: true})
	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev := natstest.ChanRecv(t, w.Revisions(), 5*time.Second); rev != 1 {
		t.Fatalf("first revision = %d, want 1", rev)
	}
	push(t, s, "2", bundle.PushOptions{Activate: true})
	if rev := natstest.ChanRecv(t, w.Revisions(), 5*time.Second); rev != 2 {
		t.Fatalf("next revision = %d, want 2", rev)
	}
	if _, err := s.Activate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if rev := natstest.ChanRecv(t, w.Revisions(), 5*time.Second); rev != 1 {
		t.Fatalf("after activate 1 = %d, want 1", rev)
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	if _, ok := <-w.Revisions(); ok {
		t.Fatal("Revisions not closed after Stop")
	}
}

// TestWatchLeavesNoGoroutine: a stopped watcher leaves no goroutine behind
// once its connection and server are closed.
func TestWatchLeavesNoGoroutine(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	s := natstest.RunServer(t, natstest.WithJetStream())
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	st, err := bundle.Open(context.Background(), js, scheme, bundle.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	push(t, st, "1", bundle.PushOptions{Activate: true})
	w, err := st.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	natstest.ChanRecv(t, w.Revisions(), 5*time.Second)
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()
	s.WaitForShutdown()
	// nats.go's jetstream starts resetPendingAcksOnReconnect with its first
	// asynchronous publish; when the publisher is cleaned up before that
	// goroutine reads its status channel, it reads a nil channel for ever.
	// The goroutine is the client library's, not the watcher's.
	goleak.VerifyNone(t, baseline, goleak.IgnoreAnyFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

// TestPushPutTimeout: storing a revision's object and listing the
// revisions are bounded by PutTimeout when the context has no deadline (the
// object store waits on the context alone), and not when it has one.
func TestPushPutTimeout(t *testing.T) {
	s, js := store(t, 10)
	push(t, s, "first", bundle.PushOptions{Activate: true})
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	tight, err := bundle.Open(context.Background(), js, scheme, bundle.Options{PutTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, map[string]string{"functions.yaml": "# bounded\n"})
	if _, err := tight.Push(context.Background(), b, bundle.PushOptions{Activate: true}); err == nil || !strings.Contains(err.Error(), "store revision 2") {
		t.Fatalf("push with a 1ns put timeout = %v, want the store of revision 2 to fail", err)
	}
	if _, err := tight.Revisions(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Revisions with a 1ns bound = %v, want the deadline exceeded", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b = newBundle(t, map[string]string{"functions.yaml": "# caller's deadline\n"})
	res, err := tight.Push(ctx, b, bundle.PushOptions{Activate: true})
	if err != nil || !res.Activated || res.Revision != 3 {
		t.Fatalf("push with the caller's deadline = %+v, %v; want revision 3 active", res, err)
	}
	if revs, err := tight.Revisions(ctx); err != nil || !slices.Equal(revs, []uint64{1, 3}) {
		t.Fatalf("Revisions with the caller's deadline = %v, %v; want [1 3]", revs, err)
	}
}
