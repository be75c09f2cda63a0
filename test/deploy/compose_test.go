package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	composeFile   = "docker-compose.yml"
	dockerfile    = "deploy/Dockerfile"
	workerService = "trigger-worker"
	workDir       = "/app" // the image's WORKDIR, where config/ is found
)

// composeService is the part of a compose service the tests look at. Fields
// with a short and a long syntax are kept as any.
type composeService struct {
	Image       string   `yaml:"image"`
	Build       any      `yaml:"build"`
	Command     any      `yaml:"command"`
	Environment any      `yaml:"environment"`
	Volumes     []any    `yaml:"volumes"`
	Ports       []string `yaml:"ports"`
	Deploy      struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

type composeFileModel struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

// env returns the service's environment as a map (it may be a list of
// NAME=value).
func (s composeService) env() map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			if v == nil {
				out[k] = ""
			} else {
				out[k] = toString(v)
			}
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(toString(kv), "=")
			out[k] = v
		}
	}
	return out
}

// command returns the service's command as a list.
func (s composeService) command() []string {
	switch c := s.Command.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		var out []string
		for _, a := range c {
			out = append(out, toString(a))
		}
		return out
	}
	return nil
}

// mount is a volume of a service: a bind mount when Source starts with "."
// or "/", else a named volume.
type mount struct {
	Source, Target string
	ReadOnly       bool
}

func (m mount) bind() bool {
	return strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/")
}

func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			m := mount{Source: parts[0]}
			if len(parts) > 1 {
				m.Target = parts[1]
			}
			m.ReadOnly = len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
			out = append(out, m)
		case map[string]any:
			ro, _ := v["read_only"].(bool)
			out = append(out, mount{Source: toString(v["source"]), Target: toString(v["target"]), ReadOnly: ro})
		}
	}
	return out
}

func toString(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func loadCompose(t *testing.T) composeFileModel {
	t.Helper()
	var c composeFileModel
	decodeYAML(t, composeFile, &c)
	return c
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"nats", workerService, "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("%s: no service %q", composeFile, name)
		}
	}

	// Three workers: deploy.replicas, or three services of that name.
	replicas := 0
	for name, s := range c.Services {
		if name == workerService || strings.HasPrefix(name, workerService+"-") {
			if s.Deploy.Replicas != nil {
				replicas += *s.Deploy.Replicas
			} else {
				replicas++
			}
		}
	}
	if replicas != 3 {
		t.Errorf("%d trigger-worker replicas, want 3", replicas)
	}

	nats := c.Services["nats"]
	if !strings.HasPrefix(nats.Image, "nats:2.11") {
		t.Errorf("nats image %q, want nats:2.11", nats.Image)
	}
	cmd := strings.Join(nats.command(), " ")
	for _, arg := range []string{"-js", "-sd /data", "-m 8222"} {
		if !strings.Contains(cmd, arg) {
			t.Errorf("nats command %q lacks %q", cmd, arg)
		}
	}
	if !slices.ContainsFunc(nats.mounts(), func(m mount) bool { return m.Target == "/data" }) {
		t.Error("nats: no volume on /data (the JetStream store)")
	}

	w := c.Services[workerService]
	env := w.env()
	if got := env["TRIGGER_NATS_URL"]; got != "nats://nats:4222" {
		t.Errorf("worker TRIGGER_NATS_URL = %q, want nats://nats:4222", got)
	}
	if got := env["TRIGGER_METRICS_LISTEN"]; got != "0.0.0.0:"+metricsPort {
		t.Errorf("worker TRIGGER_METRICS_LISTEN = %q, want 0.0.0.0:%s (what Prometheus scrapes)", got, metricsPort)
	}
	build, _ := w.Build.(map[string]any)
	if build == nil || path.Clean(toString(build["dockerfile"])) != dockerfile {
		t.Errorf("worker build %v, want dockerfile %s", w.Build, dockerfile)
	}
	var configMounted bool
	for _, m := range w.mounts() {
		if m.bind() && !m.ReadOnly {
			t.Errorf("worker mount %s is not read-only", m.Source)
		}
		if m.Target == workDir+"/config/trigger-worker.yaml" {
			configMounted = true
		}
	}
	if !configMounted {
		t.Errorf("worker: config not mounted at %s/config/trigger-worker.yaml", workDir)
	}

	g := c.Services["grafana"]
	genv := g.env()
	if genv["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || genv["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("grafana: want anonymous viewer access, env %v", genv)
	}
}

// TestComposeFilesExist checks that every file the stack mounts or builds
// from is in the repository, and that the named volumes are declared.
func TestComposeFilesExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, m := range s.mounts() {
			if !m.bind() {
				if _, ok := c.Volumes[m.Source]; !ok {
					t.Errorf("service %s: volume %q is not declared", name, m.Source)
				}
				continue
			}
			if _, err := os.Stat(repoPath(m.Source)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, m.Source, err)
			}
		}
		if b, ok := s.Build.(map[string]any); ok {
			ctx := toString(b["context"])
			if _, err := os.Stat(repoPath(path.Join(ctx, toString(b["dockerfile"])))); err != nil {
				t.Errorf("service %s build: %v", name, err)
			}
		}
	}
}

// TestComposePrometheusAndGrafanaWiring checks that the mounted files are
// where the programs look for them.
func TestComposePrometheusAndGrafanaWiring(t *testing.T) {
	c := loadCompose(t)
	targetOf := func(service, source string) string {
		for _, m := range c.Services[service].mounts() {
			if path.Clean(m.Source) == source {
				return m.Target
			}
		}
		t.Errorf("service %s does not mount %s", service, source)
		return ""
	}

	promCfg := targetOf("prometheus", prometheusFile)
	alerts := targetOf("prometheus", alertsFile)
	if path.Dir(promCfg) != path.Dir(alerts) {
		t.Errorf("prometheus.yml at %s and alerts.yml at %s: rule_files expects them side by side", promCfg, alerts)
	}
	if cmd := c.Services["prometheus"].command(); !slices.Contains(cmd, "--config.file="+promCfg) {
		t.Errorf("prometheus command %v does not load %s", cmd, promCfg)
	}

	// Grafana: the dashboards provider reads the directory the dashboard is
	// mounted in, and the data source points at the prometheus service.
	dash := targetOf("grafana", dashboardFile)
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "deploy/grafana/provisioning/dashboards/triggerbus.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != path.Dir(dash) {
		t.Errorf("dashboard provider %+v, want one file provider reading %s", prov.Providers, path.Dir(dash))
	}
	if got := targetOf("grafana", "deploy/grafana/provisioning/dashboards"); got != "/etc/grafana/provisioning/dashboards" {
		t.Errorf("dashboard provisioning mounted at %s", got)
	}
	if got := targetOf("grafana", "deploy/grafana/provisioning/datasources"); got != "/etc/grafana/provisioning/datasources" {
		t.Errorf("data source provisioning mounted at %s", got)
	}
	var ds struct {
		Datasources []struct {
			Name, Type, URL, UID string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" ||
		ds.Datasources[0].UID == "" || !ds.Datasources[0].IsDefault {
		t.Errorf("data sources %+v, want one default prometheus at http://prometheus:9090 with a uid", ds.Datasources)
	}
}

func TestDockerfile(t *testing.T) {
	lines := linesOf(readRepoFile(t, dockerfile))
	text := strings.Join(lines, "\n")
	for _, re := range []string{
		`(?m)^ARG GO_VERSION=1\.26$`,
		`(?m)^FROM golang:\$\{GO_VERSION\} AS build$`,
		`CGO_ENABLED=0 go build -trimpath`,
		`-ldflags "-s -w -X main\.version=\$\{VERSION\} -X main\.revision=\$\{REVISION\}"`,
		`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`,
		`(?m)^WORKDIR ` + workDir + `$`,
		`(?m)^EXPOSE ` + metricsPort + `$`,
		`(?m)^ENTRYPOINT \["/usr/local/bin/trigger-worker"\]$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("%s does not match %s", dockerfile, re)
		}
	}
	// The ldflags must name variables that exist in package main.
	files, err := filepath.Glob(repoPath("cmd/trigger-worker/*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var main strings.Builder
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && !strings.HasSuffix(f, "_test.go") {
			main.Write(data)
		}
	}
	for _, v := range []string{"version", "revision"} {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s+= "`).MatchString(main.String()) {
			t.Errorf("cmd/trigger-worker has no string variable %s for -X main.%s", v, v)
		}
	}
}
