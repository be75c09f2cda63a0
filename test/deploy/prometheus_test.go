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
	alertsTestFile = "deploy/prometheus/alerts_test.yml"
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
		"TriggerRegistryWriteFailing":  {"trigger_registry_write_failures_total", "1m"},
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

// TestAlertUnitTests checks that the promtool unit tests of the alerts
// (alertsTestFile, run by `promtool test rules` in .ci/run) load alerts.yml
// and test every alert it defines, and no alert it does not: the two files
// cannot drift apart.
func TestAlertUnitTests(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, alertsFile, &rf)
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	decodeYAML(t, alertsTestFile, &tf)
	// rule_files resolve against the test file's directory.
	if !slices.Equal(tf.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("%s: rule_files %v, want [alerts.yml]", alertsTestFile, tf.RuleFiles)
	}
	defined := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				defined[r.Alert] = true
			}
		}
	}
	// For each alert: tested at all, tested firing, tested silent.
	tested, fires, silent := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTest {
			tested[at.Alertname] = true
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				silent[at.Alertname] = true
			}
		}
	}
	for name := range defined {
		switch {
		case !tested[name]:
			t.Errorf("alert %s of %s has no alert_rule_test in %s", name, alertsFile, alertsTestFile)
		case !fires[name]:
			t.Errorf("alert %s: no test in %s where it fires", name, alertsTestFile)
		case !silent[name]:
			t.Errorf("alert %s: no test in %s where it does not fire (exp_alerts empty)", name, alertsTestFile)
		}
	}
	for name := range tested {
		if !defined[name] {
			t.Errorf("%s tests alert %s, which %s does not define", alertsTestFile, name, alertsFile)
		}
	}
}

// TestPromtool runs promtool on the rules, the config and the alerts' unit
// tests when it is on PATH (scripts/check-deploy.sh, run by .ci/run,
// installs it); it is never installed here.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH; scripts/check-deploy.sh installs it and runs these checks")
	}
	for _, args := range [][]string{
		{"check", "rules", repoPath(alertsFile)},
		{"check", "config", repoPath(prometheusFile)},
		{"test", "rules", repoPath(alertsTestFile)},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
