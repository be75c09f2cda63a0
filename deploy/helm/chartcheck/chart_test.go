package chartcheck

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

const fullName = releaseName + "-triggerbus"

// A signing key of `trigger-worker functions keygen`, for bundle mode.
const trustedKey = "UCQENNSEWJYVXWKU5PSCBB7HGJHZZ3VAEZ36STK2CVWSML6TFYETXB63"

// validSets are values sets the chart must lint, render and validate, each
// with what it must render beyond what every set renders (checkCommon).
var validSets = []struct {
	name   string
	values string
	check  func(t *testing.T, objs objects, cfg config.Config)
}{
	{
		name: "defaults",
		check: func(t *testing.T, objs objects, cfg config.Config) {
			d := deployment(t, objs)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
			}
			noObject(t, objs, "ScaledObject/"+fullName, "HorizontalPodAutoscaler/"+fullName, "ServiceMonitor/"+fullName)
			if cfg.Bundle.Source != config.SourceFiles || cfg.Scripts.Dir != "" || cfg.Delivery.Mode != config.DeliveryDurable {
				t.Errorf("config bundle.source %q, scripts.dir %q, delivery.mode %q; want files, none, durable", cfg.Bundle.Source, cfg.Scripts.Dir, cfg.Delivery.Mode)
			}
		},
	},
	{
		name: "keda",
		values: `
config:
  subjects: {prefix: fco.eu1.trigger, queue: eu1-workers}
autoscaling:
  keda: {enabled: true, minReplicas: 1, maxReplicas: 20, lagThreshold: 50, account: APPS, useHttps: true}
`,
		check: func(t *testing.T, objs objects, cfg config.Config) {
			if cfg.Subjects.Prefix != "fco.eu1.trigger" || cfg.Subjects.Queue != "eu1-workers" {
				t.Fatalf("subjects = %+v, want the values' prefix and queue", cfg.Subjects)
			}
			if r := deployment(t, objs).Spec.Replicas; r != nil {
				t.Errorf("replicas = %d with KEDA, want none (the autoscaler owns it)", *r)
			}
			noObject(t, objs, "HorizontalPodAutoscaler/"+fullName)
			so := object[*scaledObject](t, objs, "ScaledObject", fullName)
			ref := so.Spec.ScaleTargetRef
			if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != fullName {
				t.Errorf("scaleTargetRef = %+v, want the Deployment %s", ref, fullName)
			}
			if *so.Spec.MinReplicaCount != 1 || *so.Spec.MaxReplicaCount != 20 {
				t.Errorf("replicas %d..%d, want 1..20", *so.Spec.MinReplicaCount, *so.Spec.MaxReplicaCount)
			}
			// The stream the workers create and their durable consumer,
			// named by the worker's code from subjects.prefix and queue.
			scheme, err := subjects.NewScheme(cfg.Subjects.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"natsServerMonitoringEndpoint": "nats.nats.svc.cluster.local:8222",
				"account":                      "APPS",
				"stream":                       scheme.EventStream(),
				"consumer":                     cfg.Subjects.Queue,
				"lagThreshold":                 "50",
				"activationLagThreshold":       "0",
				"useHttps":                     "true",
			}
			if got := so.Spec.Triggers[0].Metadata; !maps.Equal(got, want) {
				t.Errorf("nats-jetstream metadata = %v, want %v", got, want)
			}
		},
	},
	{
		name: "hpa",
		values: `
autoscaling:
  hpa: {enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60}
`,
		check: func(t *testing.T, objs objects, _ config.Config) {
			if r := deployment(t, objs).Spec.Replicas; r != nil {
				t.Errorf("replicas = %d with an HPA, want none", *r)
			}
			noObject(t, objs, "ScaledObject/"+fullName)
			h := object[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler", fullName)
			if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != fullName || ref.APIVersion != "apps/v1" {
				t.Errorf("scaleTargetRef = %+v, want the Deployment", ref)
			}
			if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 12 {
				t.Errorf("replicas %d..%d, want 3..12", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
			m := h.Spec.Metrics
			if len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU || *m[0].Resource.Target.AverageUtilization != 60 {
				t.Errorf("metrics = %+v, want CPU at 60%%", m)
			}
		},
	},
	{
		name: "servicemonitor",
		values: `
serviceMonitor: {enabled: true, interval: 15s, labels: {release: kube-prometheus-stack}}
metrics: {port: 9100}
`,
		check: func(t *testing.T, objs objects, cfg config.Config) {
			sm := object[*monitoringv1.ServiceMonitor](t, objs, "ServiceMonitor", fullName)
			svc := metricsService(t, objs)
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor selector %v does not select the Service's labels %v", sel, svc.Labels)
			}
			if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
				t.Errorf("namespaceSelector = %v, want [%s]", sm.Spec.NamespaceSelector.MatchNames, namespace)
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("endpoints = %+v, want port %s path /metrics", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
			}
			if sm.Spec.Endpoints[0].Interval != "15s" || sm.Labels["release"] != "kube-prometheus-stack" {
				t.Errorf("interval %q, labels %v; want 15s and release=kube-prometheus-stack", sm.Spec.Endpoints[0].Interval, sm.Labels)
			}
			if svc.Spec.Ports[0].Port != 9100 || cfg.Metrics.Listen != "0.0.0.0:9100" {
				t.Errorf("service port %d, metrics.listen %q; want 9100", svc.Spec.Ports[0].Port, cfg.Metrics.Listen)
			}
		},
	},
	{
		name: "bundle",
		values: `
bundle: {source: bundle, trustedKeys: [` + trustedKey + `]}
`,
		check: func(t *testing.T, objs objects, cfg config.Config) {
			if cfg.Bundle.Source != config.SourceBundle || !slices.Equal(cfg.Bundle.TrustedKeys, []string{trustedKey}) {
				t.Errorf("bundle = %+v, want source bundle with the trusted key", cfg.Bundle)
			}
			if cfg.Scripts.Dir != "" || len(cfg.Functions) != 0 {
				t.Errorf("scripts.dir %q and %d functions in bundle mode, want none", cfg.Scripts.Dir, len(cfg.Functions))
			}
			items := configVolume(t, deployment(t, objs)).ConfigMap.Items
			if len(items) != 1 || items[0].Path != "trigger-worker.yaml" {
				t.Errorf("config volume items = %+v, want the config file only", items)
			}
		},
	},
	{
		name: "files with scripts, credentials and TLS",
		values: `
nats:
  url: tls://nats.nats.svc.cluster.local:4222
  creds: {secret: worker-creds}
  tls: {secret: nats-client-tls, clientCert: true}
scripts:
  quota.lua: |
    -- a script
config:
  scripts: {api_prefix: fco.api}
  functions:
    - ref: notify
      trigger_type: POST_CREATE
      trigger_options: [SERVER]
      webhook: {url: "https://hooks.example.com/fco"}
    - ref: quota
      trigger_type: PRE_CREATE
      trigger_options: [SERVER]
      lua: {file: /etc/triggerbus/scripts/quota.lua}
`,
		check: func(t *testing.T, objs objects, cfg config.Config) {
			if cfg.Scripts.Dir != "/etc/triggerbus/scripts" || cfg.Scripts.APIPrefix != "fco.api" || len(cfg.Functions) != 2 {
				t.Errorf("scripts %+v, %d functions; want dir /etc/triggerbus/scripts, api_prefix fco.api, 2 functions", cfg.Scripts, len(cfg.Functions))
			}
			want := config.TLS{CA: "/etc/triggerbus/nats-tls/ca.crt", Cert: "/etc/triggerbus/nats-tls/tls.crt", Key: "/etc/triggerbus/nats-tls/tls.key"}
			if cfg.NATS.TLS != want || cfg.NATS.Creds != "/etc/triggerbus/nats-creds/nats.creds" {
				t.Errorf("nats tls %+v, creds %q; want %+v and /etc/triggerbus/nats-creds/nats.creds", cfg.NATS.TLS, cfg.NATS.Creds, want)
			}
			d := deployment(t, objs)
			cm := configMap(t, objs)
			if cm.Data["script.quota.lua"] != "-- a script\n" {
				t.Errorf("ConfigMap script.quota.lua = %q", cm.Data["script.quota.lua"])
			}
			if !slices.Contains(configVolume(t, d).ConfigMap.Items, corev1.KeyToPath{Key: "script.quota.lua", Path: "scripts/quota.lua"}) {
				t.Errorf("config volume does not mount scripts/quota.lua: %+v", configVolume(t, d).ConfigMap.Items)
			}
			// Every file the config names is a file the pod mounts.
			for _, p := range []string{cfg.NATS.Creds, cfg.NATS.TLS.CA, cfg.NATS.TLS.Cert, cfg.NATS.TLS.Key, cfg.Functions[1].Lua.File} {
				if !mounted(d, p) {
					t.Errorf("%s is not a file the pod mounts", p)
				}
			}
		},
	},
}

// invalidSets are values sets helm must refuse, by the schema or by the
// templates' checks, with a word of the error.
var invalidSets = []struct {
	name, values, wantErr string
}{
	{"replicaCount of the wrong type", `replicaCount: two`, "replicaCount"},
	{"nats.url empty", `nats: {url: ""}`, "url"},
	{"unknown top-level value", `replicas: 3`, "replicas"},
	{"unknown bundle source", `bundle: {source: git}`, "source"},
	{"root filesystem writable", `securityContext: {readOnlyRootFilesystem: false}`, "readOnlyRootFilesystem"},
	{"script not a lua file", `scripts: {"../x.sh": "echo"}`, "x.sh"},
	{"keda and hpa together", `autoscaling: {keda: {enabled: true}, hpa: {enabled: true}}`, "autoscaling"},
	{"nats in config", `config: {nats: {url: "nats://x:4222"}}`, "config.nats"},
	{"scripts.dir in config", `config: {scripts: {dir: /x}}`, "config.scripts.dir"},
	{"scripts in bundle mode", `{bundle: {source: bundle}, scripts: {"a.lua": "x"}}`, "bundle.source bundle"},
	{"keda without durable delivery", `{autoscaling: {keda: {enabled: true}}, config: {delivery: {mode: auto}}}`, "durable"},
	{"client certificate without a secret", `nats: {tls: {clientCert: true}}`, "nats.tls.secret"},
}

func TestLintStrict(t *testing.T) {
	for _, tt := range validSets {
		t.Run(tt.name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = namespace
			res := l.Run([]string{chartDir}, parseValues(t, tt.values))
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Fatalf("helm lint --strict: %d charts linted, errors %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

func TestLintRefusesInvalidValues(t *testing.T) {
	l := action.NewLint()
	l.Strict = true
	res := l.Run([]string{chartDir}, parseValues(t, `replicaCount: two`))
	if len(res.Errors) == 0 {
		t.Fatal("helm lint --strict passed replicaCount: two")
	}
}

func TestRender(t *testing.T) {
	for _, tt := range validSets {
		t.Run(tt.name, func(t *testing.T) {
			vals := parseValues(t, tt.values)
			manifest, err := render(t, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := decodeAll(t, manifest)
			cfg := checkCommon(t, objs)
			tt.check(t, objs, cfg)
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tt := range invalidSets {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, parseValues(t, tt.values))
			if err == nil {
				t.Fatalf("render of %s succeeded, want an error", tt.values)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("render error = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

// A long release name still gives valid object names (decodeAll checks
// them), the metrics Service's within 63 characters.
func TestLongReleaseName(t *testing.T) {
	name := strings.Repeat("r", 53)
	manifest, err := renderAs(t, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, manifest)
	var svc string
	for id := range objs {
		if after, ok := strings.CutPrefix(id, "Service/"); ok {
			svc = after
		}
	}
	if len(svc) > 63 || !strings.HasSuffix(svc, "-metrics") {
		t.Errorf("metrics Service name %q, want at most 63 characters ending in -metrics", svc)
	}
}

// A change of the worker's config or scripts changes the pod template, so
// that helm upgrade rolls the pods (the worker reloads only on SIGHUP).
func TestConfigChangeRollsPods(t *testing.T) {
	sum := func(values string) string {
		manifest, err := render(t, parseValues(t, values))
		if err != nil {
			t.Fatal(err)
		}
		s := deployment(t, decodeAll(t, manifest)).Spec.Template.Annotations["checksum/config"]
		if len(s) != 64 {
			t.Fatalf("checksum/config = %q, want a sha256", s)
		}
		return s
	}
	base := sum("")
	for _, values := range []string{
		`config: {log: {level: debug}}`,
		`scripts: {"a.lua": "-- one"}`,
		`nats: {url: "nats://other:4222"}`,
	} {
		if sum(values) == base {
			t.Errorf("checksum/config unchanged by %s", values)
		}
	}
	if sum(`scripts: {"a.lua": "-- one"}`) == sum(`scripts: {"a.lua": "-- two"}`) {
		t.Error("checksum/config unchanged by a script's text")
	}
}

// checkCommon checks what every rendering must hold and returns the worker
// config of the ConfigMap, loaded by the worker's own loader.
func checkCommon(t *testing.T, objs objects) config.Config {
	t.Helper()
	d := deployment(t, objs)
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v (%v) does not match its pod labels %v", sel, err, podLabels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// Non-root, read-only root filesystem, no privilege escalation.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot not true: %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext = %+v, want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation", sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want a CPU request and a memory limit", c.Resources)
	}
	// The worker writes to os.TempDir only: /tmp is an emptyDir.
	if v := volumeAt(d, "/tmp"); v == nil || v.EmptyDir == nil {
		t.Errorf("/tmp is not an emptyDir: %+v", v)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("volumeMount %s names no volume", m.Name)
		}
		if m.MountPath != "/tmp" && !m.ReadOnly {
			t.Errorf("volumeMount %s at %s is writable", m.Name, m.MountPath)
		}
	}

	// The worker config: the file the container is started with, loaded
	// as the worker loads it.
	cm := configMap(t, objs)
	cv := configVolume(t, d)
	if cv.ConfigMap.Name != cm.Name {
		t.Errorf("config volume mounts ConfigMap %s, rendered %s", cv.ConfigMap.Name, cm.Name)
	}
	for _, it := range cv.ConfigMap.Items {
		if _, ok := cm.Data[it.Key]; !ok {
			t.Errorf("config volume item %s is not a key of the ConfigMap", it.Key)
		}
	}
	i := slices.Index(c.Args, "-c")
	if i < 0 || i+1 >= len(c.Args) || c.Args[0] != "run" {
		t.Fatalf("args = %v, want run -c FILE", c.Args)
	}
	if !mounted(d, c.Args[i+1]) {
		t.Errorf("config file %s is not mounted", c.Args[i+1])
	}
	cfg := loadWorkerConfig(t, cm.Data[filepath.Base(c.Args[i+1])])
	if cfg.NATS.URL == "" {
		t.Error("nats.url is empty: the worker would start an embedded server in the pod")
	}

	// Probes: /healthz and /readyz on the metrics listener.
	_, portStr, err := net.SplitHostPort(cfg.Metrics.Listen)
	if err != nil {
		t.Fatalf("metrics.listen %q: %v", cfg.Metrics.Listen, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Metrics.Listen); host != "0.0.0.0" {
		t.Errorf("metrics.listen %q: probes and Prometheus reach the pod's address, not loopback", cfg.Metrics.Listen)
	}
	port, _ := strconv.Atoi(portStr)
	var metricsPort *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "metrics" {
			metricsPort = &c.Ports[i]
		}
	}
	if metricsPort == nil || int(metricsPort.ContainerPort) != port {
		t.Fatalf("container port metrics = %+v, want %d (metrics.listen)", metricsPort, port)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want httpGet %s", p.name, p.probe, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || !portIs(g.Port, metricsPort) {
			t.Errorf("%s probe GET %s on %s, want %s on the metrics port %d", p.name, g.Path, g.Port.String(), p.path, port)
		}
	}

	// The metrics Service selects the pods and targets the metrics port.
	svc := metricsService(t, objs)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || !portIs(svc.Spec.Ports[0].TargetPort, metricsPort) || svc.Spec.Ports[0].Name != "metrics" {
		t.Errorf("Service ports = %+v, want metrics to the container's metrics port", svc.Spec.Ports)
	}

	// The PodDisruptionBudget covers exactly these pods.
	pdb := object[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", fullName)
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !psel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v (%v) does not match the pod labels %v", psel, err, podLabels)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("PodDisruptionBudget has neither maxUnavailable nor minAvailable")
	}
	if sa := pod.Spec.ServiceAccountName; sa != "" && objs.get("ServiceAccount", sa) == nil {
		t.Errorf("serviceAccountName %s is not rendered", sa)
	}
	return cfg
}

// loadWorkerConfig writes the rendered config file and loads it with
// config.Load, as trigger-worker run -c does: unknown keys, wrong types and
// invalid values are errors there.
func loadWorkerConfig(t *testing.T, text string) config.Config {
	t.Helper()
	if text == "" {
		t.Fatal("the ConfigMap has no worker config")
	}
	path := filepath.Join(t.TempDir(), "trigger-worker.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("the worker refuses the rendered config: %v\n%s", err, text)
	}
	return cfg
}

// object returns the rendered object kind/name as a T, or fails the test.
func object[T runtime.Object](t *testing.T, objs objects, kind, name string) T {
	t.Helper()
	o, ok := objs.get(kind, name).(T)
	if !ok {
		t.Fatalf("no %s %s; rendered %v", kind, name, objs.kinds())
	}
	return o
}

func deployment(t *testing.T, objs objects) *appsv1.Deployment {
	t.Helper()
	return object[*appsv1.Deployment](t, objs, "Deployment", fullName)
}

func configMap(t *testing.T, objs objects) *corev1.ConfigMap {
	t.Helper()
	return object[*corev1.ConfigMap](t, objs, "ConfigMap", fullName)
}

func metricsService(t *testing.T, objs objects) *corev1.Service {
	t.Helper()
	return object[*corev1.Service](t, objs, "Service", fullName+"-metrics")
}

func configVolume(t *testing.T, d *appsv1.Deployment) *corev1.Volume {
	t.Helper()
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "config" && v.ConfigMap != nil {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	t.Fatal("no config volume from a ConfigMap")
	return nil
}

func noObject(t *testing.T, objs objects, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, ok := objs[id]; ok {
			t.Errorf("%s rendered, want none", id)
		}
	}
}

// volumeAt returns the volume mounted at path in the worker container.
func volumeAt(d *appsv1.Deployment, path string) *corev1.Volume {
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &d.Spec.Template.Spec.Volumes[i]
			}
		}
	}
	return nil
}

// mounted reports whether file is a file of a volume the worker container
// mounts: an item of a ConfigMap or Secret volume (or any file of one that
// lists no items), under the mount path with the deepest match.
func mounted(d *appsv1.Deployment, file string) bool {
	var best corev1.VolumeMount
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if strings.HasPrefix(file, m.MountPath+"/") && len(m.MountPath) > len(best.MountPath) {
			best = m
		}
	}
	if best.Name == "" {
		return false
	}
	rel := strings.TrimPrefix(file, best.MountPath+"/")
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != best.Name {
			continue
		}
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		case v.Secret != nil:
			items = v.Secret.Items
		default:
			return false
		}
		if len(items) == 0 {
			return true
		}
		return slices.ContainsFunc(items, func(it corev1.KeyToPath) bool { return it.Path == rel })
	}
	return false
}
