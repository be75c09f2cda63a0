package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func serverVersion() string { return server.VERSION }

// report is the whole result, as printed and as written by --json.
type report struct {
	Command      []string      `json:"command"`
	Started      time.Time     `json:"started"`
	GoVersion    string        `json:"goVersion"`
	NumCPU       int           `json:"numCPU"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
	CPUModel     string        `json:"cpuModel"`
	LoadAvgStart float64       `json:"loadAvgStart"`
	LoadAvgEnd   float64       `json:"loadAvgEnd"`
	Topology     string        `json:"topology"`
	Options      reportOptions `json:"options"`
	Rows         []*rowResult  `json:"rows"`
	Idle         *idleResult   `json:"idle,omitempty"`
	Failures     []string      `json:"failures,omitempty"`
}

type reportOptions struct {
	Duration     string `json:"duration"`
	Warmup       string `json:"warmup"`
	Runs         int    `json:"runs"`
	Concurrency  int    `json:"concurrency"`
	PayloadBytes int    `json:"payloadBytes"`
	Window       int    `json:"window"`
	Scale        []int  `json:"scale"`
	Quick        bool   `json:"quick"`
	URL          string `json:"url,omitempty"`
	// Heap floors of the worker sides' collectors (gc.heap_floor_bytes), 0 off.
	GCFloorBytes    int64 `json:"gcFloorBytes"`
	RawGCFloorBytes int64 `json:"rawGcFloorBytes"`
}

// sample is one run of one variant.
type sample struct {
	Run              int     `json:"run"`
	Events           int64   `json:"events"`
	Seconds          float64 `json:"seconds"`
	EventsPerSec     float64 `json:"eventsPerSec"`
	P50Us            float64 `json:"p50Us"`
	P90Us            float64 `json:"p90Us"`
	P99Us            float64 `json:"p99Us"`
	WorkerCPUSeconds float64 `json:"workerCpuSeconds"`
	WorkerCPUPer100k float64 `json:"workerCpuSecondsPer100k"`
	WorkerPeakRSSMiB float64 `json:"workerPeakRssMiB"`
	ServerCPUPer100k float64 `json:"serverCpuSecondsPer100k,omitempty"`
	DriverCPUPer100k float64 `json:"driverCpuSecondsPer100k"`
	Errors           int64   `json:"errors,omitempty"`
	Lost             int64   `json:"lost,omitempty"`
	FirstError       string  `json:"firstError,omitempty"`
	Goroutines       int     `json:"workerGoroutines"`
	// GoroutinesPerEvent and AllocsPerEvent are the goroutines started and
	// heap objects allocated by the worker-side process in the measured
	// phase, per event (the harness's own counting included, on both sides).
	GoroutinesPerEvent float64 `json:"workerGoroutinesPerEvent"`
	AllocsPerEvent     float64 `json:"workerAllocsPerEvent"`
}

// stat is the median and range of a figure over the runs.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func statOf(vs []float64) stat {
	vs = slices.DeleteFunc(slices.Clone(vs), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
	if len(vs) == 0 {
		return stat{}
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return stat{Median: m, Min: vs[0], Max: vs[len(vs)-1], N: len(vs)}
}

// ratios compare a variant with its row's baseline, run by run (run i of
// one with run i of the other), summarized over the runs.
type ratios struct {
	// Throughput is events/s over the baseline's: > 1 is better.
	Throughput stat `json:"throughput"`
	// P50 and P99 are latencies over the baseline's: < 1 is better.
	P50 stat `json:"p50"`
	P99 stat `json:"p99"`
	// DeltaP50Us is the p50 latency minus the baseline's, in µs.
	DeltaP50Us stat `json:"deltaP50Us"`
	// CPU is the worker side's CPU per event over the baseline's: < 1 is
	// better.
	CPU stat `json:"workerCpu"`
}

type variantResult struct {
	Name         string    `json:"name"`
	Samples      []*sample `json:"samples"`
	EventsPerSec stat      `json:"eventsPerSec"`
	P50Us        stat      `json:"p50Us"`
	P90Us        stat      `json:"p90Us"`
	P99Us        stat      `json:"p99Us"`
	CPUPer100k   stat      `json:"workerCpuSecondsPer100k"`
	PeakRSSMiB   stat      `json:"workerPeakRssMiB"`
	ServerCPU    stat      `json:"serverCpuSecondsPer100k"`
	GorPerEvent  stat      `json:"workerGoroutinesPerEvent"`
	AllocsPerEv  stat      `json:"workerAllocsPerEvent"`
	VsBaseline   *ratios   `json:"vsBaseline,omitempty"`
}

type rowResult struct {
	Scenario  string           `json:"scenario"`
	Title     string           `json:"title"`
	Baseline  string           `json:"baseline"`
	Variants  []*variantResult `json:"variants"`
	Target    string           `json:"target"`
	TargetMet *bool            `json:"targetMet,omitempty"`
	Failures  []string         `json:"failures,omitempty"`
	pre       bool
	delta     bool
}

type idleResult struct {
	Wait       string  `json:"wait"`
	RSSMiB     float64 `json:"rssMiB"`
	PeakRSSMiB float64 `json:"peakRssMiB"`
	Goroutines int     `json:"goroutines"`
	Target     string  `json:"target"`
	TargetMet  bool    `json:"targetMet"`
}

// summarize computes the medians, the ratios to the baseline and the target.
func (row *rowResult) summarize(sc *scenario) {
	row.pre, row.delta = sc.pre, sc.delta
	pick := func(v *variantResult, f func(*sample) float64) []float64 {
		var out []float64
		for _, s := range v.Samples {
			if s != nil {
				out = append(out, f(s))
			}
		}
		return out
	}
	for _, v := range row.Variants {
		v.EventsPerSec = statOf(pick(v, func(s *sample) float64 { return s.EventsPerSec }))
		v.P50Us = statOf(pick(v, func(s *sample) float64 { return s.P50Us }))
		v.P90Us = statOf(pick(v, func(s *sample) float64 { return s.P90Us }))
		v.P99Us = statOf(pick(v, func(s *sample) float64 { return s.P99Us }))
		v.CPUPer100k = statOf(pick(v, func(s *sample) float64 { return s.WorkerCPUPer100k }))
		v.PeakRSSMiB = statOf(pick(v, func(s *sample) float64 { return s.WorkerPeakRSSMiB }))
		v.ServerCPU = statOf(pick(v, func(s *sample) float64 { return s.ServerCPUPer100k }))
		v.GorPerEvent = statOf(pick(v, func(s *sample) float64 { return s.GoroutinesPerEvent }))
		v.AllocsPerEv = statOf(pick(v, func(s *sample) float64 { return s.AllocsPerEvent }))
	}
	base := row.Variants[0]
	for _, v := range row.Variants[1:] {
		var thr, p50, p99, d50, cpu []float64
		for i, s := range v.Samples {
			if s == nil || i >= len(base.Samples) || base.Samples[i] == nil {
				continue
			}
			b := base.Samples[i]
			thr = append(thr, s.EventsPerSec/b.EventsPerSec)
			p50 = append(p50, s.P50Us/b.P50Us)
			p99 = append(p99, s.P99Us/b.P99Us)
			d50 = append(d50, s.P50Us-b.P50Us)
			cpu = append(cpu, s.WorkerCPUPer100k/b.WorkerCPUPer100k)
		}
		v.VsBaseline = &ratios{Throughput: statOf(thr), P50: statOf(p50), P99: statOf(p99), DeltaP50Us: statOf(d50), CPU: statOf(cpu)}
	}
	if last := row.Variants[len(row.Variants)-1].VsBaseline; last != nil && last.Throughput.N > 0 && sc.met != nil {
		met := sc.met(last)
		row.TargetMet = &met
	}
}

// floorText describes a worker side's heap floor.
func floorText(b int64) string {
	if b <= 0 {
		return "Go's default"
	}
	return fmt.Sprintf("heap floor %g MiB (gc.heap_floor_bytes)", float64(b)/(1<<20))
}

func (r *report) print(w io.Writer) {
	busy := ""
	if r.LoadAvgStart > 2 || r.LoadAvgEnd > 2 {
		busy = " (busy: load average over 2)"
	}
	fmt.Fprintf(w, "trigger-bench: %d run(s) per variant, %s measured each after %s warm-up, interleaved; payload %d B; concurrency %d\n",
		r.Options.Runs, r.Options.Duration, r.Options.Warmup, r.Options.PayloadBytes, r.Options.Concurrency)
	fmt.Fprintf(w, "machine: %s, %d CPUs, GOMAXPROCS %d, %s; load average %.2f at start, %.2f at end%s\n",
		r.CPUModel, r.NumCPU, r.GOMAXPROCS, r.GoVersion, r.LoadAvgStart, r.LoadAvgEnd, busy)
	fmt.Fprintf(w, "topology: %s\n", r.Topology)
	fmt.Fprintf(w, "garbage collector of the worker side: %s ours, %s raw\n\n", floorText(r.Options.GCFloorBytes), floorText(r.Options.RawGCFloorBytes))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tside\tevents/s [min-max]\tp50 µs [min-max]\tp90 µs\tp99 µs [min-max]\tworker CPU s/100k\tworker peak RSS MiB\tgoroutines/event\tallocs/event\tvs baseline, median [min-max]\ttarget")
	for _, row := range r.Rows {
		for i, v := range row.Variants {
			title := ""
			if i == 0 {
				title = row.Title
			}
			cmp, target := "baseline", ""
			if i > 0 {
				cmp = row.compare(v.VsBaseline)
			}
			if i == len(row.Variants)-1 {
				target = row.Target
				switch {
				case row.TargetMet == nil:
					target += ": n/a"
				case *row.TargetMet:
					target += ": met"
				default:
					target += ": MISSED"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", title, v.Name,
				withRange(v.EventsPerSec, rate), withRange(v.P50Us, micros), median(v.P90Us, micros), withRange(v.P99Us, micros),
				median(v.CPUPer100k, fixed3), median(v.PeakRSSMiB, fixed1), median(v.GorPerEvent, fixed3), median(v.AllocsPerEv, fixed1),
				cmp, target)
		}
	}
	_ = tw.Flush()
	for _, row := range r.Rows {
		for _, v := range row.Variants {
			for _, smp := range v.Samples {
				if smp != nil && (smp.Errors > 0 || smp.Lost > 0) {
					fmt.Fprintf(w, "note: %s %s run %d: %d errors, %d events lost", row.Scenario, v.Name, smp.Run, smp.Errors, smp.Lost)
					if smp.FirstError != "" {
						fmt.Fprintf(w, " (first error: %s)", smp.FirstError)
					}
					fmt.Fprintln(w)
				}
			}
		}
	}
	if r.Idle != nil {
		met := "met"
		if !r.Idle.TargetMet {
			met = "MISSED"
		}
		fmt.Fprintf(w, "\nidle worker, embedded server off: RSS %.1f MiB after %s (peak %.1f MiB, %d goroutines); target %s: %s\n",
			r.Idle.RSSMiB, r.Idle.Wait, r.Idle.PeakRSSMiB, r.Idle.Goroutines, r.Idle.Target, met)
	}
	fmt.Fprintln(w, "\nvs baseline: ours/raw (PRE Lua: lua vs go; matcher: vs the smallest set), run by run; thr > 1x is better, latency < 1x is better.")
	fmt.Fprintln(w, "cpu: worker-side CPU per event over the baseline's (< 1x is better); goroutines/event and allocs/event: started and allocated by the worker-side process in the measured phase, per event.")
	fmt.Fprintln(w, "POST latency is send to function under full load (at most --window events in flight), so it includes queueing; PRE latency is the request round trip.")
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "\nFAILED runs:\n  %s\n", strings.Join(r.Failures, "\n  "))
	}
}

// compare renders a variant's ratios to the baseline.
func (row *rowResult) compare(r *ratios) string {
	if r == nil || r.Throughput.N == 0 {
		return "n/a"
	}
	thr := "thr " + ratioRange(r.Throughput) + "; cpu " + ratioRange(r.CPU)
	switch {
	case row.delta:
		d := fmt.Sprintf("p50 %+.1f µs", r.DeltaP50Us.Median)
		if r.DeltaP50Us.N > 1 {
			d += fmt.Sprintf(" [%+.1f..%+.1f]", r.DeltaP50Us.Min, r.DeltaP50Us.Max)
		}
		return d + "; " + thr
	case row.pre:
		return fmt.Sprintf("%s; p50 %s; p99 %s", thr, ratioRange(r.P50), ratioRange(r.P99))
	}
	return thr
}

func ratioRange(s stat) string {
	if s.N > 1 {
		return fmt.Sprintf("%.2fx [%.2f-%.2f]", s.Median, s.Min, s.Max)
	}
	return fmt.Sprintf("%.2fx", s.Median)
}

func withRange(s stat, f func(float64) string) string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", f(s.Median), f(s.Min), f(s.Max))
}

func median(s stat, f func(float64) string) string {
	if s.N == 0 {
		return "-"
	}
	return f(s.Median)
}

func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fixed3(v float64) string { return fmt.Sprintf("%.3f", v) }

func fixed1(v float64) string { return fmt.Sprintf("%.1f", v) }
