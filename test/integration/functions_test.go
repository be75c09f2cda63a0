package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestFunctionsCLI drives trigger-worker functions through the binary on a
// JetStream server: a push stores revision 1 and activates it, an invalid
// bundle is refused with exit 2 and changes nothing, concurrent pushes get
// distinct increasing revisions, and the history keeps the active revision
// however old.
func TestFunctionsCLI(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	proctest.WriteFile(t, scripts, "deny.lua", proctest.DenyScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), scripts, map[string]any{"bundle.history": 3})
	functions := func(args ...string) (int, string, string) {
		t.Helper()
		return proctest.Run(t, bin, append(append([]string{"functions"}, args...), "-c", cfg)...)
	}
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	state := func() (uint64, []uint64) {
		t.Helper()
		st, err := bundle.Open(context.Background(), js, scheme, bundle.Options{})
		if err != nil {
			t.Fatal(err)
		}
		active, err := st.Active(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		revs, err := st.Revisions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return active, revs
	}

	code, out, errOut := functions("push", "-m", "first")
	if code != 0 || !strings.Contains(out, "revision 1 pushed: 1 functions, 2 files") || !strings.Contains(out, "revision 1 is active") {
		t.Fatalf("push: exit %d\n%s%s", code, out, errOut)
	}

	// An invalid bundle: exit 2, the problem named, nothing stored.
	proctest.WriteFile(t, scripts, "broken.lua", "function register( return end")
	code, out, errOut = functions("push", "-m", "broken")
	if code != 2 || !strings.Contains(errOut, "broken.lua") || !strings.Contains(errOut, "nothing pushed") {
		t.Fatalf("push of a broken script: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if active, revs := state(); active != 1 || !slices.Equal(revs, []uint64{1}) {
		t.Fatalf("after the refused push: active %d, revisions %v; want 1, [1]", active, revs)
	}
	if err := os.Remove(filepath.Join(scripts, "broken.lua")); err != nil {
		t.Fatal(err)
	}

	// Concurrent pushes from separate processes.
	const n = 4
	got := make([]uint64, n)
	var wg sync.WaitGroup
	re := regexp.MustCompile(`revision (\d+) pushed`)
	for i := range n {
		wg.Go(func() {
			code, out, errOut := proctest.Run(t, bin, "functions", "push", "--no-activate", "-m", fmt.Sprint("parallel ", i), "-c", cfg)
			m := re.FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Errorf("parallel push %d: exit %d\n%s%s", i, code, out, errOut)
				return
			}
			got[i], _ = strconv.ParseUint(m[1], 10, 64)
		})
	}
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("revisions of concurrent pushes = %v, want 2 3 4 5 each once", got)
	}

	// History 3: the newest three and revision 1, still active.
	active, revs := state()
	if active != 1 || !slices.Equal(revs, []uint64{1, 3, 4, 5}) {
		t.Fatalf("after 5 pushes with history 3: active %d, revisions %v; want 1, [1 3 4 5]", active, revs)
	}
	code, out, _ = functions("ls")
	if code != 0 || !regexp.MustCompile(`(?m)^1\s+\*\s.*first$`).MatchString(out) || strings.Count(out, "\n") != 5 {
		t.Fatalf("ls: exit %d\n%s", code, out)
	}

	// Roll forward, then the next push prunes the old revision.
	if code, out, errOut = functions("activate", "5"); code != 0 || out != "revision 5 is active (was 1)\n" {
		t.Fatalf("activate 5: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = functions("push", "-m", "sixth"); code != 0 || !strings.Contains(out, "removed beyond the history of 3: 1 3") {
		t.Fatalf("push 6: exit %d\n%s%s", code, out, errOut)
	}
	if active, revs := state(); active != 6 || !slices.Equal(revs, []uint64{4, 5, 6}) {
		t.Fatalf("after push 6: active %d, revisions %v; want 6, [4 5 6]", active, revs)
	}

	// pull, then check the pulled directory with a dry run.
	pulled := filepath.Join(t.TempDir(), "six")
	if code, out, errOut = functions("pull", "6", pulled); code != 0 {
		t.Fatalf("pull: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = functions("push", "--dry-run", pulled); code != 0 || !strings.Contains(out, "deny_big") {
		t.Fatalf("push --dry-run of the pulled revision: exit %d\n%s%s", code, out, errOut)
	}
}

// TestFunctionsSigned: with bundle.trusted_keys, the binary pushes only
// revisions signed by a trusted key, and refuses to activate or pull one
// whose script was changed in the store after signing.
func TestFunctionsSigned(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	keys := t.TempDir()
	code, pub, errOut := proctest.Run(t, bin, "functions", "keygen", filepath.Join(keys, "ops.nk"))
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	pub = strings.TrimSpace(pub)
	if code, _, _ := proctest.Run(t, bin, "functions", "keygen", filepath.Join(keys, "other.nk")); code != 0 {
		t.Fatal("keygen other")
	}
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{"bundle.trusted_keys": []string{pub}})
	functions := func(args ...string) (int, string, string) {
		t.Helper()
		return proctest.Run(t, bin, append(append([]string{"functions"}, args...), "-c", cfg)...)
	}
	for _, args := range [][]string{{"push"}, {"push", "--sign", filepath.Join(keys, "other.nk")}} {
		if code, out, errOut := functions(args...); code != 2 || !strings.Contains(errOut, "nothing pushed") {
			t.Fatalf("functions %v: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	code, out, errOut := functions("push", "--sign", filepath.Join(keys, "ops.nk"))
	if code != 0 || !strings.Contains(out, "revision 1 pushed") || !strings.Contains(out, "signed by "+pub) {
		t.Fatalf("signed push: exit %d\n%s%s", code, out, errOut)
	}

	// Change the script inside the stored revision, keeping its manifest
	// and signature.
	tamperRevision(t, s, 1, "scripts/deny.lua", strings.Replace(proctest.DenyScript, "cpu > 16", "cpu > 1600", 1))
	for _, args := range [][]string{{"activate", "1"}, {"pull", "1", filepath.Join(t.TempDir(), "p")}} {
		if code, out, errOut := functions(args...); code != 1 || !strings.Contains(errOut, "do not match the manifest") {
			t.Errorf("functions %v of a tampered revision: exit %d, want 1\n%s%s", args, code, out, errOut)
		}
	}
}
