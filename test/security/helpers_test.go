package security_test

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

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/matcher"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed.
const (
	waitShort = 15 * time.Second
	waitLong  = 60 * time.Second
	poll      = 10 * time.Millisecond
)

// binDir holds the programs the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "triggerbus-security-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "security:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error

	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = errors.New("go env GOMOD: not in a module")
			return
		}
		root = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

// triggerWorker builds ./cmd/trigger-worker once per test binary and
// returns the path of the executable.
func triggerWorker(t testing.TB) string {
	t.Helper()
	dir := moduleRoot(t)
	buildOnce.Do(func() {
		buildPath = filepath.Join(binDir, "trigger-worker")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/trigger-worker")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/trigger-worker: %v\n%s", err, out)
			return
		}
		buildErr = statSources(dir)
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
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	exited chan struct{} // closed when the process has exited and err is set
	err    error
}

// startProcess runs trigger-worker with args and env added to the test's
// environment. The process is killed, if still running, when the test
// ends; its output is logged if the test failed.
func startProcess(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(triggerWorker(t), args...), exited: make(chan struct{})}
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start trigger-worker: %v", err)
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
			t.Logf("trigger-worker %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// exitCode waits for the process to exit and returns its exit code.
func (p *process) exitCode(t testing.TB) int {
	t.Helper()
	natstest.ChanRecv(t, p.exited, waitLong)
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("trigger-worker killed by %v", ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Errorf("trigger-worker exited %d after SIGTERM, want 0", code)
	}
}

// run runs trigger-worker with args to the end and returns its exit code
// and output.
func run(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProcess(t, env, args...)
	code = p.exitCode(t)
	return code, p.stdout.String(), p.stderr.String()
}

// metricsAddrRE finds the metrics address in a text or JSON log.
var metricsAddrRE = regexp.MustCompile(`metrics endpoint"[ ,]"?addr"?[=:]"?([^"\s]+)`)

// waitReady waits until the process serves /readyz with 200 and returns
// the base URL of its HTTP endpoint.
func (p *process) waitReady(t testing.TB) string {
	t.Helper()
	var base string
	natstest.CheckFor(t, waitLong, poll, func() error {
		select {
		case <-p.exited:
			t.Fatalf("trigger-worker exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if base == "" {
			m := metricsAddrRE.FindStringSubmatch(p.stderr.String())
			if m == nil {
				return errors.New("no metrics address logged yet")
			}
			base = "http://" + m[1]
		}
		body, code, err := httpGet(base + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz = %d %s", code, body)
		}
		return nil
	})
	return base
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(url string) (string, int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
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

// denyBig is a PRE_CREATE function that refuses inputs with cpu > 16.
func denyBig() matcher.Function {
	return matcher.Function{Ref: "deny_big", TriggerType: "PRE_CREATE", Options: []string{"ANY"},
		Value: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			if bytes.Contains(ev.Input, []byte(`"cpu":64`)) {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"}, nil
			}
			return handlers.Result{ExitState: handlers.Success}, nil
		})}
}
