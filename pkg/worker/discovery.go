package worker

// Discovery: every worker announces itself as an instance of the NATS
// service "triggerbus" (nats.go's micro package), so that `nats micro ls`,
// `nats micro info triggerbus` and `nats micro stats triggerbus` list the
// fleet with its version, functions and subjects.
//
// The service is for discovery and stats only. Dispatch stays on the
// worker's own queue subscriptions (worker.go) and durable consumer
// (durable.go), because micro endpoints cannot carry it:
//   - an endpoint subscribes by itself: one on a trigger subject in our queue
//     group would be one more member of the group and take a share of the
//     events, and one in another group would get a copy of every event;
//   - a micro handler gets a micro.Request, not the *nats.Msg the dispatch
//     path, the PRE deadline watchdog and the loop guard work on;
//   - a service cannot remove one endpoint, so Replace could not drop a
//     subject; and Stop drains endpoints without waiting, where the worker
//     waits for each drained subscription and answers every PRE it took;
//   - the worker sets its own pending limits and queue group (ANY options
//     are `<prefix>.<TYPE>.*` wildcards, PRE and POST are split, and POST
//     goes through JetStream in durable mode).
// So the trigger subjects and function refs are published in the service
// metadata instead of as endpoints, and the service has one endpoint of its
// own, "status" on <prefix>.worker.<service id>.status, answered only by
// this instance: it replies with the worker's [ServiceStats], which are
// also the data of that endpoint in $SRV.STATS replies (micro calls the
// StatsHandler per endpoint, so stats need one).
//
// micro fixes a service's metadata when it is added. Replace therefore
// replaces the service when the functions or subjects changed: the new
// instance (a new id) is added before the old one is stopped, so the worker
// always answers $SRV.PING, and for a moment a listing may show it twice.
//
// Lock order: Worker.mu, then discovery.mu. The StatsHandler and the status
// endpoint take neither (micro calls the StatsHandler with its own lock
// held, and Stop is called with discovery.mu held).

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultServiceName is the NATS service name workers announce themselves
// under when [Config.Name] is "".
const DefaultServiceName = "triggerbus"

// serviceDescription is the description of the discovery service.
const serviceDescription = "triggerbus trigger worker"

// modulePath is this module, whose version is the default [Config.Version].
const modulePath = "github.com/triggerbus/triggerbus"

// semVer is the SemVer 2.0 pattern that micro requires of a service version
// (the one semver.org suggests).
var semVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// serviceName is micro's pattern of a service name.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9\-_]+$`)

// ServiceVersion maps a build version to the SemVer that a NATS service
// must announce: "v1.2.3" and "1.2.3" become "1.2.3", a git describe such
// as "v1.2.3-4-gabcdef" stays a pre-release ("1.2.3-4-gabcdef"), "" and
// "dev" become "0.0.0-dev", and anything else becomes a 0.0.0 pre-release
// that names it ("nightly/42" becomes "0.0.0-nightly-42").
func ServiceVersion(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	if semVer.MatchString(v) {
		return v
	}
	// Pre-release identifiers: [0-9A-Za-z-]+, dot-separated, numeric ones
	// without leading zeros.
	var ids []string
	for id := range strings.SplitSeq(v, ".") {
		id = strings.Trim(strings.Map(func(r rune) rune {
			if r < 0x80 && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return r
			}
			return '-'
		}, id), "-")
		if id == "" {
			continue
		}
		if len(id) > 1 && id[0] == '0' && strings.Trim(id, "0123456789") == "" {
			id = "n" + id
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "0.0.0-dev"
	}
	if s := "0.0.0-" + strings.Join(ids, "."); semVer.MatchString(s) {
		return s
	}
	return "0.0.0-dev"
}

// moduleVersion is the version of this module in the running binary, ""
// when it was not built from a tagged module (go run, go build in a
// checkout).
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	m := &bi.Main
	if m.Path != modulePath {
		if i := slices.IndexFunc(bi.Deps, func(d *debug.Module) bool { return d.Path == modulePath }); i >= 0 {
			m = bi.Deps[i]
		} else {
			return ""
		}
	}
	if m.Version == "(devel)" {
		return ""
	}
	return m.Version
}

// ServiceStats is what a worker reports about itself in the data of its
// $SRV.STATS reply and on its status endpoint. The counts are read from the
// worker's [Metrics]: when several workers share one Metrics, they are the
// sum over those workers.
type ServiceStats struct {
	// Ready is [Worker.Ready].
	Ready bool `json:"ready"`
	// Functions is the number of functions registered.
	Functions int `json:"functions"`
	// EventsReceived counts the events that reached the worker
	// (trigger_events_received_total), EventsDropped those dropped without
	// running functions (trigger_events_dropped_total), and EventsHandled
	// the difference.
	EventsReceived uint64 `json:"events_received"`
	EventsDropped  uint64 `json:"events_dropped"`
	EventsHandled  uint64 `json:"events_handled"`
	// Invocations counts function calls; Errors those that returned an error
	// or timed out, Failed those that returned FAILED.
	Invocations uint64 `json:"invocations"`
	Errors      uint64 `json:"errors"`
	Failed      uint64 `json:"failed"`
	// PreAllowed and PreDenied count the PRE decisions answered; PreFailOpen
	// the PRE function errors let through by failure_policy ignore.
	PreAllowed  uint64 `json:"pre_allowed"`
	PreDenied   uint64 `json:"pre_denied"`
	PreFailOpen uint64 `json:"pre_fail_open"`
	// InFlight is the number of function calls running now.
	InFlight int64 `json:"in_flight"`
	// Redeliveries, DeadLetters and ScheduleFires count durable
	// redeliveries, events moved to the dead-letter stream and schedule
	// ticks fired.
	Redeliveries  uint64 `json:"redeliveries"`
	DeadLetters   uint64 `json:"dead_letters"`
	ScheduleFires uint64 `json:"schedule_fires"`
	// SlowConsumers counts the times NATS dropped messages for one of the
	// connection's subscriptions.
	SlowConsumers uint64 `json:"slow_consumers"`
}

// discovery is the worker's discovery service.
type discovery struct {
	mu      sync.Mutex
	started bool // Start has run: Replace keeps the service current
	stopped bool // Stop has run: nothing is announced any more
	svc     micro.Service
	meta    map[string]string
}

// ServiceID returns the id of the worker's discovery service instance
// (`nats micro info triggerbus <id>`), "" when none is running. It changes
// when a Replace changes the functions.
func (w *Worker) ServiceID() string {
	w.disc.mu.Lock()
	defer w.disc.mu.Unlock()
	if w.disc.svc == nil {
		return ""
	}
	return w.disc.svc.Info().ID
}

// startDiscovery announces the worker. Start calls it with w.mu held, once
// the subscriptions are in place.
func (w *Worker) startDiscovery() error {
	d := &w.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.started {
		return nil
	}
	d.started = true
	return w.replaceServiceLocked()
}

// updateDiscovery re-announces the worker when its functions or subjects
// changed. Replace calls it with w.mu held.
func (w *Worker) updateDiscovery() error {
	d := &w.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopped {
		return nil
	}
	if d.svc != nil && maps.Equal(d.meta, w.serviceMetadata()) {
		return nil
	}
	return w.replaceServiceLocked()
}

// stopDiscovery withdraws the worker from discovery. Stop calls it first, so
// that a draining worker is no longer listed. It is idempotent.
func (w *Worker) stopDiscovery() error {
	d := &w.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.svc == nil {
		return nil
	}
	svc := d.svc
	d.svc = nil
	if err := svc.Stop(); err != nil {
		return fmt.Errorf("worker: stop discovery service: %w", err)
	}
	w.flushDiscovery()
	return nil
}

// flushDiscovery waits until the server has the discovery subscriptions
// just made or removed, so that the change is visible once Start, Replace or
// Stop returns. Without a connection they are sent on (re)connect.
func (w *Worker) flushDiscovery() {
	if !w.nc.IsConnected() {
		return
	}
	if err := w.nc.FlushTimeout(5 * time.Second); err != nil {
		w.log.Warn("discovery service: flush", "err", err)
	}
}

// replaceServiceLocked adds a service with the current metadata and then
// stops the previous one, if any. On error the previous one stays.
func (w *Worker) replaceServiceLocked() error {
	d := &w.disc
	name := cmp.Or(w.cfg.Name, DefaultServiceName)
	if !serviceName.MatchString(name) {
		return fmt.Errorf("worker: service name %q: want letters, digits, '-' and '_' only", name)
	}
	meta := w.serviceMetadata()
	svc, err := micro.AddService(w.nc, micro.Config{
		Name:        name,
		Version:     ServiceVersion(cmp.Or(w.cfg.Version, moduleVersion())),
		Description: serviceDescription,
		Metadata:    meta,
		// The status endpoint is per instance: no queue group.
		QueueGroupDisabled: true,
		StatsHandler:       func(*micro.Endpoint) any { return w.Stats() },
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			w.log.Warn("discovery service error", "subject", err.Subject, "err", err.Description)
		},
	})
	if err != nil {
		return fmt.Errorf("worker: discovery service: %w", err)
	}
	id := svc.Info().ID
	status := w.scheme.Prefix() + ".worker." + id + ".status"
	err = svc.AddEndpoint("status", micro.HandlerFunc(w.serveStatus),
		micro.WithEndpointSubject(status),
		micro.WithEndpointMetadata(map[string]string{
			"description": "this worker's counters (ServiceStats JSON); trigger events are not served here",
		}))
	if err != nil {
		_ = svc.Stop()
		return fmt.Errorf("worker: discovery status endpoint: %w", err)
	}
	// The new instance answers before the previous one goes.
	w.flushDiscovery()
	old := d.svc
	d.svc, d.meta = svc, meta
	w.log.Info("discovery service registered", "service", name, "id", id,
		"version", svc.Info().Version, "status_subject", status)
	if old != nil {
		if err := old.Stop(); err != nil {
			return fmt.Errorf("worker: stop previous discovery service: %w", err)
		}
		w.flushDiscovery()
	}
	return nil
}

// serviceMetadata describes the worker in its service's metadata. Values
// are strings; lists are comma-separated and sorted.
func (w *Worker) serviceMetadata() map[string]string {
	set := w.state.Load().set
	refs := make([]string, 0, set.Len())
	for _, e := range set.Entries() {
		refs = append(refs, e.Ref)
	}
	slices.Sort(refs)
	pre, post := set.Subscriptions(w.scheme)
	subjs := slices.Concat(pre, post)
	slices.Sort(subjs)
	delivery := "core"
	if w.durable != nil {
		delivery = "durable"
	}
	meta := map[string]string{
		"prefix":        w.scheme.Prefix(),
		"queue":         w.cfg.Queue,
		"delivery":      delivery,
		"max_in_flight": strconv.Itoa(w.cfg.MaxInFlight),
		"functions":     strconv.Itoa(len(refs)),
		"function_refs": strings.Join(refs, ","),
		"subjects":      strings.Join(slices.Compact(subjs), ","),
		"instance":      w.cfg.Instance,
	}
	if rev := w.state.Load().rev; rev != 0 {
		meta["functions_revision"] = strconv.FormatUint(rev, 10)
	}
	if v := cmp.Or(w.cfg.Version, moduleVersion()); v != "" {
		meta["build_version"] = v
	}
	if h, err := os.Hostname(); err == nil {
		meta["host"] = h
	}
	return meta
}

// serveStatus answers the status endpoint with the worker's stats.
func (w *Worker) serveStatus(req micro.Request) {
	data, err := json.Marshal(w.Stats())
	if err != nil {
		_ = req.Error("500", err.Error(), nil)
		return
	}
	_ = req.Respond(data)
}

// Stats returns the worker's counts, read from its metrics.
func (w *Worker) Stats() ServiceStats {
	m := w.metrics
	s := ServiceStats{
		Ready:          w.Ready(),
		Functions:      w.state.Load().set.Len(),
		EventsReceived: sumOf(m.EventsReceived, nil),
		EventsDropped:  sumOf(m.EventsDropped, nil),
		Invocations:    sumOf(m.FunctionInvocations, nil),
		Errors:         sumOf(m.FunctionInvocations, labelIn("result", ResultError, ResultTimeout)),
		Failed:         sumOf(m.FunctionInvocations, labelIn("result", ResultFailed)),
		PreAllowed:     sumOf(m.PreDecisions, labelIn("decision", "allowed")),
		PreDenied:      sumOf(m.PreDecisions, labelIn("decision", "denied")),
		PreFailOpen:    sumOf(m.PreFailOpen, nil),
		InFlight:       int64(sumOf(m.FunctionsInFlight, nil)),
		Redeliveries:   sumOf(m.Redeliveries, nil),
		DeadLetters:    sumOf(m.DeadLetters, nil),
		ScheduleFires:  sumOf(m.ScheduleFires, nil),
		SlowConsumers:  sumOf(m.SlowConsumers, nil),
	}
	if s.EventsReceived > s.EventsDropped {
		s.EventsHandled = s.EventsReceived - s.EventsDropped
	}
	return s
}

// labelIn keeps the series whose label name has one of values.
func labelIn(name string, values ...string) func(*dto.Metric) bool {
	return func(m *dto.Metric) bool {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return slices.Contains(values, l.GetValue())
			}
		}
		return false
	}
}

// sumOf adds up the counter or gauge series of c that keep accepts (all
// when keep is nil).
func sumOf(c prometheus.Collector, keep func(*dto.Metric) bool) uint64 {
	ch := make(chan prometheus.Metric)
	go func() { // ends when Collect returns; the loop below drains ch until then
		c.Collect(ch)
		close(ch)
	}()
	var sum float64
	for metric := range ch {
		var pb dto.Metric
		if metric.Write(&pb) != nil || keep != nil && !keep(&pb) {
			continue
		}
		sum += pb.GetCounter().GetValue() + pb.GetGauge().GetValue()
	}
	if sum < 0 {
		return 0
	}
	return uint64(sum)
}
