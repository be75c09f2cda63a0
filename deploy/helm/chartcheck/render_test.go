package chartcheck

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test.
var chartDir = filepath.Join("..", "triggerbus")

const (
	releaseName = "tb"
	namespace   = "triggers"
)

// loadChart loads the chart directory as helm does.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return ch
}

// parseValues reads a values set given as YAML, as helm reads a -f file.
func parseValues(t *testing.T, text string) map[string]any {
	t.Helper()
	vals, err := loader.LoadValues(strings.NewReader(text))
	if err != nil {
		t.Fatalf("values: %v\n%s", err, text)
	}
	return vals
}

// render renders the chart with helm template's semantics (a client-only dry
// run of an install, no cluster) and returns the manifest.
func render(t *testing.T, vals map[string]any) (string, error) {
	t.Helper()
	return renderAs(t, releaseName, vals)
}

// renderAs renders the chart as release name.
func renderAs(t *testing.T, name string, vals map[string]any) (string, error) {
	t.Helper()
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = name
	inst.Namespace = namespace
	inst.Replace = true
	rel, err := inst.Run(loadChart(t), vals)
	if err != nil {
		return "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("install returned %T, want *release.Release", rel)
	}
	return r.Manifest, nil
}

// scheme knows every kind the chart may render whose Go types are at hand.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, monitoringv1.SchemeBuilder.AddToScheme,
	} {
		utilruntime.Must(add(s))
	}
	return s
}()

// strict decodes YAML into the registered Go types; unknown and duplicate
// fields are errors.
var strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// objects are the rendered objects by kind and name.
type objects map[string]runtime.Object

func (o objects) get(kind, name string) runtime.Object { return o[kind+"/"+name] }

func (o objects) kinds() []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// decodeAll splits a manifest and decodes every object strictly: the kinds
// of k8s.io/api and the ServiceMonitor into their Go types, the KEDA
// ScaledObject into [scaledObject] (KEDA's module needs a newer Go than
// this one, so its fields are checked here).
func decodeAll(t *testing.T, manifest string) objects {
	t.Helper()
	out := objects{}
	docs := releaseutil.SplitManifests(manifest)
	for _, key := range sortedKeys(docs) {
		doc := docs[key]
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v\n%s", key, err, doc)
		}
		if head.Kind == "" {
			continue // a template that rendered nothing
		}
		var obj runtime.Object
		if head.APIVersion == "keda.sh/v1alpha1" && head.Kind == "ScaledObject" {
			so := &scaledObject{}
			if err := yaml.UnmarshalStrict([]byte(doc), so); err != nil {
				t.Fatalf("ScaledObject %s: %v\n%s", head.Metadata.Name, err, doc)
			}
			if err := so.validate(); err != nil {
				t.Fatalf("ScaledObject %s: %v\n%s", head.Metadata.Name, err, doc)
			}
			obj = so
		} else {
			gvk := schema.FromAPIVersionAndKind(head.APIVersion, head.Kind)
			if !scheme.Recognizes(gvk) {
				t.Fatalf("%s: kind %s is not validated by this test; add its types", key, gvk)
			}
			o, _, err := strict.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", head.Kind, head.Metadata.Name, err, doc)
			}
			obj = o
		}
		nameErrs := validation.IsDNS1123Subdomain(head.Metadata.Name)
		if head.Kind == "Service" {
			nameErrs = validation.IsDNS1035Label(head.Metadata.Name)
		}
		if len(nameErrs) > 0 {
			t.Errorf("%s name %q: %v", head.Kind, head.Metadata.Name, nameErrs)
		}
		id := head.Kind + "/" + head.Metadata.Name
		if _, dup := out[id]; dup {
			t.Fatalf("%s rendered twice", id)
		}
		out[id] = obj
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) that
// the chart renders; strict decoding into it refuses any other field.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

func (*scaledObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (s *scaledObject) DeepCopyObject() runtime.Object { c := *s; return &c }

// validate checks what KEDA's CRD requires (scaleTargetRef.name, triggers
// with a type and metadata) and what its nats-jetstream scaler needs.
func (s *scaledObject) validate() error {
	var errs []error
	if s.Metadata.Name == "" {
		errs = append(errs, errors.New("metadata.name is empty"))
	}
	if s.Spec.ScaleTargetRef.Name == "" {
		errs = append(errs, errors.New("spec.scaleTargetRef.name is required"))
	}
	if len(s.Spec.Triggers) == 0 {
		errs = append(errs, errors.New("spec.triggers is required"))
	}
	lo, hi := s.Spec.MinReplicaCount, s.Spec.MaxReplicaCount
	if lo != nil && hi != nil && *lo > *hi {
		errs = append(errs, fmt.Errorf("minReplicaCount %d > maxReplicaCount %d", *lo, *hi))
	}
	for i, tr := range s.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			errs = append(errs, fmt.Errorf("triggers[%d].type %q, want nats-jetstream", i, tr.Type))
			continue
		}
		for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
			if tr.Metadata[k] == "" {
				errs = append(errs, fmt.Errorf("triggers[%d].metadata.%s is required", i, k))
			}
		}
		for k := range tr.Metadata {
			switch k {
			case "natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps":
			default:
				errs = append(errs, fmt.Errorf("triggers[%d].metadata.%s is not a parameter of the nats-jetstream scaler", i, k))
			}
		}
		if u := tr.Metadata["useHttps"]; u != "" && u != "true" && u != "false" {
			errs = append(errs, fmt.Errorf("triggers[%d].metadata.useHttps %q, want true or false", i, u))
		}
	}
	return errors.Join(errs...)
}

// portIs reports whether p (a name or a number) is the container port cp.
func portIs(p intstr.IntOrString, cp *corev1.ContainerPort) bool {
	if p.Type == intstr.String {
		return p.StrVal == cp.Name
	}
	return p.IntVal == cp.ContainerPort
}
