package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// functionsRig is a JetStream server and a config directory with one FDL
// script and a config file defining a lua function and an exec one.
type functionsRig struct {
	url, dir, config, scripts string
}

func newFunctionsRig(t *testing.T) *functionsRig {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	r := &functionsRig{url: s.ClientURL(), dir: t.TempDir()}
	r.scripts = filepath.Join(r.dir, "scripts")
	if err := os.Mkdir(r.scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	proctest.WriteFile(t, r.scripts, "deny.lua", proctest.DenyScript)
	proctest.WriteFile(t, r.dir, "audit.lua", strings.ReplaceAll(strings.ReplaceAll(proctest.DenyScript, "deny_big", "audit"), `"SERVER"`, `"DISK"`))
	r.config = r.writeConfig(t, "")
	return r
}

// writeConfig writes the rig's config with extra appended.
func (r *functionsRig) writeConfig(t *testing.T, extra string) string {
	t.Helper()
	return proctest.WriteFile(t, r.dir, "trigger-worker.yaml", fmt.Sprintf(`
nats: {url: %q}
scripts: {dir: %q}
functions:
  - ref: audit
    trigger_type: PRE_CREATE
    trigger_options: [DISK]
    lua: {file: %q}
  - ref: archive
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec: {command: [/bin/true]}
%s`, r.url, r.scripts, filepath.Join(r.dir, "audit.lua"), extra))
}

func (r *functionsRig) functions(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	args = append([]string{"functions"}, args...)
	if len(args) < 2 || args[1] != "keygen" { // keygen reads no config
		args = append(args, "-c", r.config)
	}
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func (r *functionsRig) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := r.functions(args...)
	if err != nil {
		t.Fatalf("functions %v: %v\n%s%s", args, err, out, errOut)
	}
	return out
}

func TestFunctionsPushAndRead(t *testing.T) {
	r := newFunctionsRig(t)
	out := r.must(t, "push", "-m", "first", "--author", "ops")
	if !strings.Contains(out, "revision 1 pushed: 3 functions, 3 files, not signed") || !strings.Contains(out, "revision 1 is active") {
		t.Fatalf("push:\n%s", out)
	}

	// A changed script and a function less make revision 2.
	proctest.WriteFile(t, r.scripts, "deny.lua", strings.Replace(proctest.DenyScript, "cpu > 16", "cpu > 8", 1))
	r.config = r.writeConfig(t, "")
	if err := os.WriteFile(r.config, regexp.MustCompile(`(?s)  - ref: archive.*`).ReplaceAll(mustRead(t, r.config), nil), 0o600); err != nil {
		t.Fatal(err)
	}
	out = r.must(t, "push", "-m", "quota 8", "--author", "ops")
	if !strings.Contains(out, "revision 2 pushed: 2 functions") {
		t.Fatalf("push 2:\n%s", out)
	}

	ls := r.must(t, "ls")
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^2\s+\*\s+\S+Z\s+ops\s+-\s+audit,deny_big\s+quota 8$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^1\s+\S+Z\s+ops\s+-\s+archive,audit,deny_big\s+first$`).MatchString(lines[2]) {
		t.Fatalf("ls:\n%s", ls)
	}

	var revs []revisionInfo
	if err := json.Unmarshal([]byte(r.must(t, "ls", "-o", "json")), &revs); err != nil {
		t.Fatalf("ls -o json: %v", err)
	}
	if len(revs) != 2 || revs[0].Revision != 2 || !revs[0].Active || revs[0].Author != "ops" || revs[0].Message != "quota 8" ||
		!slices.Equal(revs[0].Functions, []string{"audit", "deny_big"}) || revs[1].Revision != 1 || revs[1].Active || revs[1].Created.IsZero() {
		t.Errorf("ls -o json = %+v", revs)
	}
	var shown revisionShown
	if err := json.Unmarshal([]byte(r.must(t, "show", "1", "-o", "json")), &shown); err != nil {
		t.Fatalf("show 1 -o json: %v", err)
	}
	if shown.Active || shown.Signature != nil || shown.Manifest.Revision != 1 || len(shown.Manifest.Functions) != 3 ||
		shown.Manifest.Functions[2].Ref != "deny_big" || shown.Manifest.Functions[2].Policy != "fail/enforce" ||
		!slices.Equal(shown.Manifest.Commands, []string{"/bin/true"}) {
		t.Errorf("show 1 -o json = %+v", shown)
	}

	show := r.must(t, "show", "1")
	for _, want := range []string{"revision: 1\n", "message: first", "signature: not signed",
		"deny_big  lua   PRE_CREATE   SERVER   0         fail/enforce  -         scripts/deny.lua:4", "scripts/deny.lua:", "lua/audit.lua", "functions.yaml",
		"commands (paths on each worker's host, not in the bundle):\n  /bin/true"} {
		if !strings.Contains(show, want) {
			t.Errorf("show 1 lacks %q:\n%s", want, show)
		}
	}
	if got := r.must(t, "show", "2", "scripts/deny.lua"); !strings.Contains(got, "cpu > 8") {
		t.Errorf("show 2 scripts/deny.lua:\n%s", got)
	}
	if _, _, err := r.functions("show", "2", "nope.lua"); exitCode(err) != 2 {
		t.Errorf("show of a missing file: %v, want exit 2", err)
	}

	diff := r.must(t, "diff", "1", "2")
	for _, want := range []string{"--- revision 1", "+++ revision 2", "- archive: exec POST_CREATE SERVER",
		"~ functions.yaml", "~ scripts/deny.lua", "-  if cpu ~= nil and cpu > 16 then", "+  if cpu ~= nil and cpu > 8 then",
		"commands: /bin/true -> -"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff 1 2 lacks %q:\n%s", want, diff)
		}
	}

	if out := r.must(t, "activate", "1"); out != "revision 1 is active (was 2)\n" {
		t.Errorf("activate 1: %q", out)
	}
	if ls := r.must(t, "ls"); !regexp.MustCompile(`(?m)^1\s+\*`).MatchString(ls) {
		t.Errorf("ls after activate 1:\n%s", ls)
	}
	if _, _, err := r.functions("activate", "9"); !errors.Is(err, bundle.ErrNoRevision) {
		t.Errorf("activate 9: %v", err)
	}

	// pull writes a directory that push takes back as it is.
	dir := filepath.Join(t.TempDir(), "rev2")
	if out := r.must(t, "pull", "2", dir); !strings.Contains(out, "revision 2 written to") {
		t.Errorf("pull: %s", out)
	}
	if got := string(mustRead(t, filepath.Join(dir, "scripts/deny.lua"))); !strings.Contains(got, "cpu > 8") {
		t.Errorf("pulled deny.lua: %s", got)
	}
	if _, _, err := r.functions("pull", "2", dir); err == nil {
		t.Error("pull into a directory that is not empty: no error")
	}
	out = r.must(t, "push", dir, "-m", "from the pull")
	if !strings.Contains(out, "revision 3 pushed: 2 functions, 3 files") {
		t.Fatalf("push DIR:\n%s", out)
	}
	diff = r.must(t, "diff", "2", "3")
	if !strings.Contains(diff, "functions: unchanged") || !strings.Contains(diff, "files: unchanged") {
		t.Errorf("diff 2 3 (a pull pushed back):\n%s", diff)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFunctionsPushRefusesProblems: a push with any problem check reports
// stores nothing and exits 2.
func TestFunctionsPushRefusesProblems(t *testing.T) {
	r := newFunctionsRig(t)
	r.must(t, "push")
	tests := []struct {
		name  string
		setup func(t *testing.T)
		want  string
	}{
		{"script error", func(t *testing.T) {
			path := proctest.WriteFile(t, r.scripts, "broken.lua", "function register( return end")
			t.Cleanup(func() { os.Remove(path) })
		}, "broken.lua"},
		{"unknown option", func(t *testing.T) {
			r.config = r.writeConfig(t, "  - ref: bad\n    trigger_type: PRE_CREATE\n    trigger_options: [SERVERR]\n    exec: {command: [/bin/true]}\n")
		}, "SERVERR"},
		{"missing lua file", func(t *testing.T) {
			if err := os.Remove(filepath.Join(r.dir, "audit.lua")); err != nil {
				t.Fatal(err)
			}
		}, "audit.lua"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := r.config
			tt.setup(t)
			_, errOut, err := r.functions("push")
			if exitCode(err) != 2 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "nothing pushed") {
				t.Fatalf("push: %v, want exit 2 naming %q:\n%s", err, tt.want, errOut)
			}
			ls := r.must(t, "ls")
			if strings.Count(ls, "\n") != 2 {
				t.Fatalf("ls after a refused push:\n%s", ls)
			}
			r.config = saved
		})
	}
}

func TestFunctionsSigning(t *testing.T) {
	r := newFunctionsRig(t)
	keyFile := filepath.Join(t.TempDir(), "signer.nk")
	pub := strings.TrimSpace(r.must(t, "keygen", keyFile))
	if !strings.HasPrefix(pub, "U") || len(pub) != 56 {
		t.Fatalf("keygen printed %q", pub)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if _, _, err := r.functions("keygen", keyFile); exitCode(err) != 2 {
		t.Errorf("keygen over an existing file: %v, want exit 2", err)
	}
	otherKey := filepath.Join(t.TempDir(), "other.nk")
	r.must(t, "keygen", otherKey)

	r.must(t, "push", "-m", "unsigned")
	out := r.must(t, "push", "--sign", keyFile)
	if !strings.Contains(out, "signed by "+pub) {
		t.Fatalf("push --sign:\n%s", out)
	}

	// With the key trusted, unsigned pushes and pushes by another key are
	// refused, and nothing is stored.
	r.config = r.writeConfig(t, fmt.Sprintf("bundle: {trusted_keys: [%s]}\n", pub))
	if _, _, err := r.functions("push"); exitCode(err) != 2 {
		t.Errorf("unsigned push with trusted keys: %v, want exit 2", err)
	}
	if _, _, err := r.functions("push", "--sign", otherKey); exitCode(err) != 2 {
		t.Errorf("push signed by another key: %v, want exit 2", err)
	}
	if ls := r.must(t, "ls"); strings.Count(ls, "\n") != 3 {
		t.Fatalf("ls after refused pushes:\n%s", ls)
	}
	if show := r.must(t, "show", "2"); !strings.Contains(show, "signature: signed by "+pub+" (trusted)") {
		t.Errorf("show 2:\n%s", show)
	}
	if _, _, err := r.functions("activate", "1"); !errors.Is(err, bundle.ErrUnsigned) {
		t.Errorf("activate of an unsigned revision with trusted keys: %v, want ErrUnsigned", err)
	}
	if _, _, err := r.functions("pull", "1", filepath.Join(t.TempDir(), "p")); !errors.Is(err, bundle.ErrUnsigned) {
		t.Errorf("pull of an unsigned revision with trusted keys: %v, want ErrUnsigned", err)
	}
	r.must(t, "activate", "2")
}

func TestFunctionsUsage(t *testing.T) {
	r := newFunctionsRig(t)
	for _, args := range [][]string{{}, {"nope"}, {"show"}, {"show", "x"}, {"diff", "1"}, {"pull", "1"}, {"ls", "-m", "x"}, {"push", "a", "b"}} {
		if _, _, err := r.functions(args...); exitCode(err) != 2 {
			t.Errorf("functions %v: %v, want exit 2", args, err)
		}
	}
	if _, _, err := r.functions("ls"); err == nil || !strings.Contains(err.Error(), "no function bundle has been pushed") {
		t.Errorf("ls before any push: %v", err)
	}
	out := r.must(t, "push", "--dry-run")
	if !strings.Contains(out, "dry run: nothing pushed") {
		t.Errorf("push --dry-run:\n%s", out)
	}
	if _, _, err := r.functions("ls"); err == nil {
		t.Error("ls after a dry run: the store exists")
	}
}
