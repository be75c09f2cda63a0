package deploy

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	alertsFile     = "deploy/prometheus/alerts.yml"
	prometheusFile = "deploy/prometheus/prometheus.yml"
	metricsPort    = "9464"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type promConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestAlertRules(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, alertsFile, &rf)
	exp := workerMetrics(t)

	// The alerts asked for, the metric each is about and its for duration
	// ("" for none).
	want := map[string]struct{ metric, forDur string }{
		"TriggerWorkerDown":          {"up", "1m"},
		"TriggerPreFailingOpen":      {"trigger_pre_fail_open_total", "5m"},
		"TriggerDeadLettersGrowing":  {"trigger_dead_letters_total", ""},
		"TriggerFunctionLatencyHigh": {"trigger_function_duration_seconds_bucket", "10m"},
		"TriggerNATSDisconnected":    {"trigger_nats_connected", "1m"},
		"TriggerPreDecisionTooLarge": {"trigger_pre_decisions_too_large_total", ""},
		"TriggerDeadLetterTruncated": {"trigger_dead_letters_truncated_total", ""},
		"TriggerConfigReloadFailed":  {"trigger_config_last_reload_successful", "5m"},
		// No silent loss: the stream's fill, the backlog, dead letters kept.
		"TriggerDeadLettersPresent":    {"trigger_dead_letter_stream_messages", ""},
		"TriggerEventBacklogGrowing":   {"trigger_consumer_pending", "15m"},
		"TriggerEventStreamFilling":    {"trigger_event_stream_limit_bytes", "5m"},
		"TriggerNoFunctionsRegistered": {"trigger_functions_registered", "5m"},
		"TriggerDecisionLogFailing":    {"trigger_decision_log_failures_total", ""},
	}
	seen := map[string]bool{}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no groups", alertsFile)
	}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert", g.Name, r.Record)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			names := checkExpr(t, "alert "+r.Alert, r.Expr, exp)
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want summary and description annotations, got %v", r.Alert, r.Annotations)
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, sev)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if w, ok := want[r.Alert]; ok {
				if !slices.Contains(names, w.metric) {
					t.Errorf("alert %s: expr %q does not use %s", r.Alert, r.Expr, w.metric)
				}
				if r.For != w.forDur {
					t.Errorf("alert %s: for %q, want %q", r.Alert, r.For, w.forDur)
				}
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no alert %s", name)
		}
	}
}

func TestPrometheusConfig(t *testing.T) {
	var pc promConfig
	decodeYAML(t, prometheusFile, &pc)
	if pc.Global.ScrapeInterval == "" {
		t.Error("no global scrape_interval")
	}
	// Rule files resolve against the config file's directory, where the
	// compose stack mounts alerts.yml too.
	if !slices.Contains(pc.RuleFiles, "alerts.yml") {
		t.Errorf("rule_files %v, want alerts.yml (beside prometheus.yml)", pc.RuleFiles)
	}
	var found bool
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "trigger-worker" {
			continue
		}
		found = true
		for _, dns := range sc.DNSSDConfigs {
			if !slices.Contains(dns.Names, workerService) || dns.Port != 9464 || dns.Type != "A" {
				t.Errorf("trigger-worker dns_sd_config %+v, want names [%s], type A, port %s", dns, workerService, metricsPort)
			}
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				if !strings.HasSuffix(tg, ":"+metricsPort) {
					t.Errorf("trigger-worker target %s, want port %s", tg, metricsPort)
				}
			}
		}
		if len(sc.DNSSDConfigs)+len(sc.StaticConfigs) == 0 {
			t.Error("trigger-worker job has no targets")
		}
	}
	if !found {
		t.Error("no scrape config with job_name trigger-worker (the alerts and dashboard select job=\"trigger-worker\")")
	}
}

// TestPromtool runs promtool on the rules and the config when it is on
// PATH (scripts/check-deploy.sh installs it); it is never installed here.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH; scripts/check-deploy.sh installs it and runs these checks")
	}
	for _, args := range [][]string{
		{"check", "rules", repoPath(alertsFile)},
		{"check", "config", repoPath(prometheusFile)},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
