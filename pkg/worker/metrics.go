package worker

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triggerbus/triggerbus/internal/cowmap"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Reasons an event is dropped, the values of the reason label.
const (
	ReasonTriggerOriginated = "trigger_originated"
	ReasonInvalid           = "invalid"
	ReasonExpired           = "expired"
)

// Results of a function call, the values of the result label.
const (
	ResultSuccess  = "success"
	ResultContinue = "continue"
	ResultFailed   = "failed"
	ResultError    = "error"
	ResultTimeout  = "timeout"
)

// resultLabels are the result labels of the outcomes of a call (the
// event.Outcome* values [handlers.Outcome] gives).
var resultLabels = map[string]string{
	event.OutcomeSuccess:  ResultSuccess,
	event.OutcomeContinue: ResultContinue,
	event.OutcomeFailed:   ResultFailed,
	event.OutcomeError:    ResultError,
	event.OutcomeTimeout:  ResultTimeout,
}

// otherOption is the option label of events whose option is not a catalogue
// value (open option sets), so that labels stay a bounded set.
const otherOption = "other"

// Metrics are the worker's Prometheus metrics (the contract's names). Create
// them with [NewMetrics]; methods are safe for concurrent use and take no
// lock on the hot path once a series has been seen.
type Metrics struct {
	EventsReceived      *prometheus.CounterVec
	EventsDropped       *prometheus.CounterVec
	FunctionInvocations *prometheus.CounterVec
	FunctionDuration    *prometheus.HistogramVec
	PreDecisions        *prometheus.CounterVec
	PreFailOpen         *prometheus.CounterVec
	FunctionsInFlight   prometheus.Gauge
	FunctionsRegistered *prometheus.GaugeVec
	ScheduleFires       *prometheus.CounterVec
	Redeliveries        *prometheus.CounterVec
	DeadLetters         *prometheus.CounterVec
	NATSConnected       prometheus.Gauge
	OriginRejected      *prometheus.CounterVec
	SlowConsumers       prometheus.Counter
	PreTooLarge         *prometheus.CounterVec
	DeadLettersCut      *prometheus.CounterVec
	DecisionLogFailures *prometheus.CounterVec
	// RegistryWriteFailures counts failed writes of this worker's
	// registrations in the PRE registry.
	RegistryWriteFailures prometheus.Counter
	// Streams are the durable delivery's stream and consumer gauges.
	Streams StreamGauges

	received cowmap.Map[receivedKey, prometheus.Counter]
	// decided holds the PreDecisions series of each PRE type by name:
	// denied, then allowed. Filled by NewMetrics, read without locking.
	decided map[string]*[2]prometheus.Counter
}

// preDecision returns the PreDecisions counter of a PRE type and outcome.
func (m *Metrics) preDecision(t *subjects.TriggerType, allowed bool) prometheus.Counter {
	i, label := 0, "denied"
	if allowed {
		i, label = 1, "allowed"
	}
	if c := m.decided[t.Name]; c != nil {
		return c[i]
	}
	return m.PreDecisions.WithLabelValues(t.Name, label)
}

type receivedKey struct{ typ, option string }

// DurationBuckets are the buckets of trigger_function_duration_seconds: from
// 50µs (Go and Lua functions) to 30s (webhooks and commands).
var DurationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// NewMetrics creates the worker metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_events_received_total",
			Help: "Events that reached this worker, including those later dropped.",
		}, []string{"trigger_type", "option"}),
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_events_dropped_total",
			Help: "Events dropped without running functions, by reason.",
		}, []string{"trigger_type", "reason"}),
		FunctionInvocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_function_invocations_total",
			Help: "Trigger function calls, by result.",
		}, []string{"function", "trigger_type", "result"}),
		FunctionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "trigger_function_duration_seconds",
			Help:    "Time a trigger function call took.",
			Buckets: DurationBuckets,
		}, []string{"function", "trigger_type"}),
		PreDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_pre_decisions_total",
			Help: "PRE decisions answered, by decision.",
		}, []string{"trigger_type", "decision"}),
		PreFailOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_pre_fail_open_total",
			Help: "PRE function errors or timeouts let through by failure_policy ignore.",
		}, []string{"function"}),
		FunctionsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trigger_functions_in_flight",
			Help: "Trigger function calls running now.",
		}),
		FunctionsRegistered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trigger_functions_registered",
			Help: "Trigger functions registered, by trigger type.",
		}, []string{"trigger_type"}),
		ScheduleFires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_schedule_fires_total",
			Help: "Scheduled ticks fired, by function.",
		}, []string{"function"}),
		Redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_redeliveries_total",
			Help: "Durable events delivered again after a failure or a lost worker.",
		}, []string{"trigger_type"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_dead_letters_total",
			Help: "Durable events moved to the dead-letter stream, by the function that failed.",
		}, []string{"function"}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trigger_nats_connected",
			Help: "1 while the worker is connected to NATS, else 0.",
		}),
		OriginRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_origin_rejected_total",
			Help: "Events whose Trigger-Origin header was not honoured (forged, expired, signed for another message, or a value given outside the bus) and so were handled as ordinary events.",
		}, []string{"trigger_type"}),
		SlowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trigger_nats_slow_consumer_total",
			Help: "Times a subscription fell behind and NATS dropped messages for it.",
		}),
		PreTooLarge: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_pre_decisions_too_large_total",
			Help: "PRE decisions larger than the NATS max payload, answered with a DECISION_TOO_LARGE refusal instead.",
		}, []string{"trigger_type"}),
		DeadLettersCut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_dead_letters_truncated_total",
			Help: "Dead letters stored without their whole event, which did not fit the NATS max payload with the dead-letter headers.",
		}, []string{"function"}),
		DecisionLogFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trigger_decision_log_failures_total",
			Help: "PRE decisions not written to the decision log (queue full, or JetStream did not store the record), by reason; the decisions themselves were answered.",
		}, []string{"reason"}),
		RegistryWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trigger_registry_write_failures_total",
			Help: "Failed writes of this worker's registrations in the PRE registry; until one succeeds, clients that watch the registry may answer NO_TRIGGER (allowed) for its subjects without asking it.",
		}),
		Streams: newStreamGauges(),
	}
	for _, c := range append([]prometheus.Collector{
		m.EventsReceived, m.EventsDropped, m.FunctionInvocations, m.FunctionDuration,
		m.PreDecisions, m.PreFailOpen, m.FunctionsInFlight, m.FunctionsRegistered,
		m.ScheduleFires, m.Redeliveries, m.DeadLetters, m.NATSConnected, m.OriginRejected,
		m.SlowConsumers, m.PreTooLarge, m.DeadLettersCut, m.DecisionLogFailures,
		m.RegistryWriteFailures,
	}, m.Streams.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.decided = make(map[string]*[2]prometheus.Counter)
	m.DecisionLogFailures.WithLabelValues(DecisionLogQueueFull)
	m.DecisionLogFailures.WithLabelValues(DecisionLogPublish)
	for _, t := range subjects.Types() {
		for _, r := range []string{ReasonTriggerOriginated, ReasonInvalid, ReasonExpired} {
			m.EventsDropped.WithLabelValues(t.Name, r)
		}
		m.OriginRejected.WithLabelValues(t.Name)
		if t.IsPre() {
			m.decided[t.Name] = &[2]prometheus.Counter{
				m.PreDecisions.WithLabelValues(t.Name, "denied"),
				m.PreDecisions.WithLabelValues(t.Name, "allowed"),
			}
			m.PreTooLarge.WithLabelValues(t.Name)
		} else {
			m.Redeliveries.WithLabelValues(t.Name)
		}
	}
	return m, nil
}

// received returns the events-received counter of a type and option. The
// option label is the option when it is a catalogue value, else "other".
// Seen series are read without locking (cowMap).
func (m *Metrics) receivedCounter(t *subjects.TriggerType, option string) prometheus.Counter {
	if !t.Known(option) {
		option = otherOption
	}
	return m.received.GetOrAdd(receivedKey{t.Name, option}, func() prometheus.Counter {
		return m.EventsReceived.WithLabelValues(t.Name, option)
	})
}

// fnMetrics are the series of one registered function. They are created on
// first use, not at registration: a worker with 10 000 functions keeps
// series (and memory: 48 bytes a function until its first call) only for
// the functions that run, and for each only the results it had. The series
// of a function are bounded: five results, one histogram, one fail-open
// counter. The series alerts count from zero (pre_fail_open, dead_letters)
// are created at registration instead, where they can occur (see
// [Worker.newState]).
type fnMetrics struct {
	m        *Metrics
	ref, typ string
	s        atomic.Pointer[fnSeries] // nil until the first use
}

// fnSeries are a function's series, each set on its first use. Creating a
// series twice (two first uses at once) is harmless: the vector returns
// the same one.
type fnSeries struct {
	results  [len(outcomes)]atomic.Pointer[prometheus.Counter] // by outcomes' index
	duration atomic.Pointer[prometheus.Observer]
	failOpen atomic.Pointer[prometheus.Counter]
}

// outcomes are the outcomes of a call ([handlers.Outcome]), in the order of
// fnSeries.results.
var outcomes = [...]string{event.OutcomeSuccess, event.OutcomeContinue, event.OutcomeFailed, event.OutcomeError, event.OutcomeTimeout}

func outcomeIndex(outcome string) int {
	for i, o := range outcomes {
		if o == outcome {
			return i
		}
	}
	return 3 // not reached (handlers.Outcome gives the outcomes only): an error
}

func (m *Metrics) function(ref, typ string) *fnMetrics {
	return &fnMetrics{m: m, ref: ref, typ: typ}
}

func (f *fnMetrics) series() *fnSeries {
	if s := f.s.Load(); s != nil {
		return s
	}
	f.s.CompareAndSwap(nil, new(fnSeries))
	return f.s.Load()
}

// lazySeries returns the series in slot, creating it with create first.
func lazySeries[T any](slot *atomic.Pointer[T], create func() T) T {
	if p := slot.Load(); p != nil {
		return *p
	}
	v := create()
	slot.Store(&v)
	return v
}

// countResult counts a call's outcome.
func (f *fnMetrics) countResult(outcome string) {
	i := outcomeIndex(outcome)
	lazySeries(&f.series().results[i], func() prometheus.Counter {
		return f.m.FunctionInvocations.WithLabelValues(f.ref, f.typ, resultLabels[outcomes[i]])
	}).Inc()
}

// observe records a call's duration.
func (f *fnMetrics) observe(d time.Duration) {
	lazySeries(&f.series().duration, func() prometheus.Observer {
		return f.m.FunctionDuration.WithLabelValues(f.ref, f.typ)
	}).Observe(d.Seconds())
}

// failOpenCounter is the function's trigger_pre_fail_open_total series.
func (f *fnMetrics) failOpenCounter() prometheus.Counter {
	return lazySeries(&f.series().failOpen, func() prometheus.Counter { return f.m.PreFailOpen.WithLabelValues(f.ref) })
}
