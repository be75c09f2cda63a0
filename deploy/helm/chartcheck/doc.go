// Package chartcheck holds the tests of the Helm chart in deploy/helm/triggerbus:
// helm lint (strict), rendering with helm template's semantics for several
// values sets, values the schema or the templates must refuse, and the
// validation of every rendered object (the Kubernetes kinds by strict
// decoding into the k8s.io/api types, the ServiceMonitor into the Prometheus
// Operator's types, the KEDA ScaledObject field by field), and that the
// rendered worker configuration loads with the worker's own loader.
//
// It is a module of its own so that helm and the Kubernetes modules stay out
// of the main module's go.mod. CI runs it with
//
//	cd deploy/helm/chartcheck && go vet ./... && go test -count=1 ./...
package chartcheck
