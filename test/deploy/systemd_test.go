package deploy

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const systemdUnit = "deploy/systemd/trigger-worker.service"

// unitFile is a systemd unit: section → key → values, in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, data []byte) unitFile {
	t.Helper()
	u := unitFile{}
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if _, dup := u[section]; dup {
				t.Errorf("%s:%d: section [%s] twice", systemdUnit, n, section)
			}
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Errorf("%s:%d: %q is not a key=value line in a section", systemdUnit, n, line)
				continue
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// TestSystemdUnit checks the unit: it runs `trigger-worker run`, reloads
// with SIGHUP, restarts on failure, keeps the embedded store in its state
// directory, and is hardened. With systemd-analyze on PATH it also lets
// systemd verify it.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, readRepoFile(t, systemdUnit))
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("no [%s] section", s)
		}
	}
	svc := u["Service"]
	one := func(key string) string {
		if v := svc[key]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("[Service] %s: %q, want one value", key, svc[key])
		return ""
	}
	start := strings.Fields(one("ExecStart"))
	if len(start) < 2 || filepath.Base(start[0]) != "trigger-worker" || !filepath.IsAbs(start[0]) || start[1] != "run" {
		t.Errorf("ExecStart %q, want an absolute path to trigger-worker, then run", start)
	}
	if r := one("ExecReload"); !strings.Contains(r, "-HUP $MAINPID") {
		t.Errorf("ExecReload %q, want a SIGHUP to $MAINPID (the worker reloads its functions on it)", r)
	}
	if r := one("Restart"); r != "on-failure" && r != "always" {
		t.Errorf("Restart %q", r)
	}
	// The embedded server's default store: $XDG_STATE_HOME/triggerbus,
	// which must be the writable StateDirectory.
	if sd, env := one("StateDirectory"), svc["Environment"]; sd != "triggerbus" || !strings.Contains(strings.Join(env, " "), "XDG_STATE_HOME=/var/lib") {
		t.Errorf("StateDirectory %q, Environment %q: want triggerbus and XDG_STATE_HOME=/var/lib", sd, env)
	}
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DynamicUser": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
	} {
		if got := one(key); got != want {
			t.Errorf("[Service] %s=%q, want %q", key, got, want)
		}
	}
	if w := u["Install"]["WantedBy"]; len(w) != 1 || w[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy %q, want multi-user.target", w)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not on PATH: unit not verified by systemd")
		return
	}
	out, err := exec.Command(analyze, "verify", "--man=no", repoPath(systemdUnit)).CombinedOutput()
	// verify checks that ExecStart's binary exists, which it does not here.
	var problems []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "/usr/local/bin/trigger-worker") && !strings.Contains(l, "Failed to prepare filename") {
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(problems, "\n"))
	}
}
