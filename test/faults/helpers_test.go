package faults_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/matcher"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed. A passing test returns long before them.
const (
	waitShort = 15 * time.Second
	waitLong  = 60 * time.Second
	poll      = 10 * time.Millisecond
)

// scale returns n, or small under the race detector or -short.
func scale(n, small int) int {
	if raceEnabled || testing.Short() {
		return small
	}
	return n
}

// binDir holds the programs the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "triggerbus-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// triggerWorker builds ./cmd/trigger-worker once per test binary and
// returns the path of the executable.
func triggerWorker(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		buildPath = filepath.Join(binDir, "trigger-worker")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/trigger-worker")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/trigger-worker: %v\n%s", err, out)
			return
		}
		buildErr = statSources(root)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// statSources stats the source files of trigger-worker and of the packages
// of this module it imports, so that the go command knows the test result
// depends on them (the program is built by a child process).
func statSources(root string) error {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/trigger-worker")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -deps: %w", err)
	}
	for dir := range strings.Lines(string(out)) {
		dir = strings.TrimSpace(dir)
		if dir == "" || !strings.HasPrefix(dir, root+string(filepath.Separator)) {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// childEnv is the environment of the programs the tests run: the test's,
// without TRIGGER_ variables, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIGGER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a trigger-worker child process.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr syncBuffer
	stdout syncBuffer
	exited chan struct{} // closed when the process has exited and err is set
	err    error
}

// startWorkerProcess runs `trigger-worker run -c cfg` with env added to the
// test's environment. The process is killed, if still running, when the
// test ends; its output is logged if the test failed.
func startWorkerProcess(t testing.TB, name, cfg string, env ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(triggerWorker(t), "run", "-c", cfg), exited: make(chan struct{})}
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
		}
		<-done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, tail(p.stderr.String(), 60))
		}
	})
	return p
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func (p *process) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// exitCode waits for the process to exit and returns its exit code, -1
// when it was killed by a signal.
func (p *process) exitCode(t testing.TB) int {
	t.Helper()
	natstest.ChanRecv(t, p.exited, waitLong)
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	t.Fatalf("%s: wait: %v", p.name, p.err)
	return -1
}

var metricsAddrRE = regexp.MustCompile(`msg="metrics endpoint" addr=(\S+)`)

// metricsURL waits for the process to log its metrics address and returns
// the base URL of its HTTP endpoint.
func (p *process) metricsURL(t testing.TB) string {
	t.Helper()
	var addr string
	natstest.CheckFor(t, waitShort, poll, func() error {
		m := metricsAddrRE.FindStringSubmatch(p.stderr.String())
		if m == nil {
			select {
			case <-p.exited:
				t.Fatalf("%s exited before serving metrics: %v\n%s", p.name, p.err, tail(p.stderr.String(), 30))
			default:
			}
			return fmt.Errorf("%s has not logged its metrics address yet", p.name)
		}
		addr = m[1]
		return nil
	})
	return "http://" + addr
}

// waitReady waits until the process's /readyz answers 200.
func (p *process) waitReady(t testing.TB) string {
	t.Helper()
	base := p.metricsURL(t)
	natstest.CheckFor(t, waitLong, poll, func() error {
		code, err := httpStatus(base + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s /readyz = %d", p.name, code)
		}
		return nil
	})
	return base
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpStatus(url string) (int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// scrape reads a /metrics endpoint.
func scrape(base string) (map[string]*dto.MetricFamily, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sum adds up the values of every series of a counter or gauge family
// whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return 0
	}
	var total float64
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logCapture is a slog logger at debug level whose output the test reads.
type logCapture struct {
	buf syncBuffer
	log *slog.Logger
}

func newLogCapture() *logCapture {
	c := &logCapture{}
	c.log = slog.New(slog.NewTextHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return c
}

func (c *logCapture) String() string { return c.buf.String() }

// count returns how many lines of the log contain s.
func (c *logCapture) count(s string) int {
	n := 0
	for line := range strings.Lines(c.String()) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// newMetrics returns worker metrics on a registry of their own.
func newMetrics(t testing.TB) (*worker.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatalf("worker.NewMetrics: %v", err)
	}
	return m, reg
}

// connectWorker connects to url with the options trigger-worker uses
// (reconnect forever, state changes logged and in metrics).
func connectWorker(t testing.TB, url string, log *slog.Logger, m *worker.Metrics, extra ...nats.Option) *nats.Conn {
	t.Helper()
	opts, err := worker.Options(worker.ConnectConfig{URL: url}, worker.ConnectionEvents{Logger: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startWorker starts an in-process worker serving fns on nc and stops it
// when the test ends.
func startWorker(t testing.TB, nc *nats.Conn, cfg worker.Config, fns ...matcher.Function) *worker.Worker {
	t.Helper()
	set, err := matcher.Build(fns)
	if err != nil {
		t.Fatalf("matcher.Build: %v", err)
	}
	w, err := worker.New(nc, matcher.New(set), cfg)
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		_ = w.Stop(context.Background())
		t.Fatalf("worker.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Logf("worker.Stop: %v", err)
		}
	})
	return w
}

// stopWorker stops w and fails the test if Stop reports an error.
func stopWorker(t testing.TB, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Errorf("worker.Stop: %v", err)
	}
}

// waitInterest waits until the global account of s has a subscription
// matching subject (local or, in a cluster, through a route).
func waitInterest(t testing.TB, s *server.Server, subject string) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !s.GlobalAccount().SubscriptionInterest(subject) {
			return fmt.Errorf("server %s: no interest in %s yet", s.Name(), subject)
		}
		return nil
	})
}

// idSet is a set of event ids safe for concurrent use, counting how often
// each was added.
type idSet struct {
	mu sync.Mutex
	m  map[string]int
}

func newIDSet() *idSet { return &idSet{m: map[string]int{}} }

func (s *idSet) add(id string) {
	s.mu.Lock()
	s.m[id]++
	s.mu.Unlock()
}

func (s *idSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// missing returns the ids of ids not in s.
func (s *idSet) missing(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if s.m[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// dups returns how many additions were repeats.
func (s *idSet) dups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.m {
		n += c - 1
	}
	return n
}

// waitAll waits until every one of ids is in s.
func waitAll(t testing.TB, what string, s *idSet, ids []string) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if m := s.missing(ids); len(m) > 0 {
			return fmt.Errorf("%s: %d of %d events not handled, e.g. %s", what, len(m), len(ids), m[0])
		}
		return nil
	})
}

// value reads one counter or gauge series.
func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
