package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReloadMetrics are the metrics of a process that loads its functions from
// configuration and reloads them (trigger-worker on SIGHUP). A reload that
// fails keeps the functions already served; these metrics are how an alert
// learns that the served set is not the configured one.
type ReloadMetrics struct {
	// Failures counts reloads that kept the old functions.
	Failures prometheus.Counter
	// LastSuccessful is 1 when the last load (at start or reload) was
	// applied, 0 when it failed.
	LastSuccessful prometheus.Gauge
	// LastSuccessTime is when the last load was applied, Unix seconds.
	LastSuccessTime prometheus.Gauge
	// Revision is the function bundle revision served; 0 when the functions
	// come from the worker's own files or no revision is loaded yet.
	Revision prometheus.Gauge
}

// NewReloadMetrics creates the reload metrics and registers them with reg.
// They read as a successful load at the time of the call.
func NewReloadMetrics(reg prometheus.Registerer) (*ReloadMetrics, error) {
	m := &ReloadMetrics{
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trigger_reload_failures_total",
			Help: "Reloads of the functions that failed and kept the functions already served.",
		}),
		LastSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trigger_config_last_reload_successful",
			Help: "1 when the last load of the functions was applied, 0 when it failed and older functions are served.",
		}),
		LastSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trigger_config_last_reload_success_timestamp_seconds",
			Help: "When the functions served were loaded, Unix seconds.",
		}),
		Revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trigger_functions_revision",
			Help: "Revision of the function bundle served; 0 when the functions come from the worker's files or no revision is loaded yet.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Failures, m.LastSuccessful, m.LastSuccessTime, m.Revision} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.Succeeded(time.Now())
	return m, nil
}

// Succeeded records a load applied at t.
func (m *ReloadMetrics) Succeeded(t time.Time) {
	m.LastSuccessful.Set(1)
	m.LastSuccessTime.Set(float64(t.UnixNano()) / 1e9)
}

// Failed records a reload that kept the old functions.
func (m *ReloadMetrics) Failed() {
	m.Failures.Inc()
	m.LastSuccessful.Set(0)
}
