package proctest

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB records what a helper reports. Fatal ends the goroutine the
// helper runs in (see call), as it does a test's.
type fakeTB struct {
	*testing.T // TempDir, Helper
	mu         sync.Mutex
	failed     bool
	msgs       []string
	cleanups   []func()
}

func (f *fakeTB) record(failed bool, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || failed
	f.msgs = append(f.msgs, msg)
}

func (f *fakeTB) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Failed() bool                      { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeTB) Logf(format string, args ...any)   { f.record(false, fmt.Sprintf(format, args...)) }
func (f *fakeTB) Errorf(format string, args ...any) { f.record(true, fmt.Sprintf(format, args...)) }
func (f *fakeTB) Fatal(args ...any)                 { f.record(true, fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// call runs fn with f in a goroutine of its own and reports whether fn
// returned (rather than failing fatally).
func (f *fakeTB) call(fn func(testing.TB)) (returned bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
		returned = true
	}()
	<-done
	return returned
}

// end runs the cleanups, last registered first, as the end of a test does.
func (f *fakeTB) end() {
	for _, fn := range slices.Backward(f.cleanups) {
		fn()
	}
}

func (f *fakeTB) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

func TestRunExitCodeAndOutput(t *testing.T) {
	code, stdout, stderr := Run(t, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("Run = %d, %q, %q; want 3, %q, %q", code, stdout, stderr, "out\n", "err\n")
	}
}

func TestEnvDropsTriggerVariables(t *testing.T) {
	t.Setenv("TRIGGER_NATS_URL", "nats://nowhere:1")
	t.Setenv("PROCTEST_KEEP", "kept")
	_, stdout, _ := RunWith(t, Options{Env: []string{"TRIGGER_LOOP_KEY=given"}}, "/bin/sh", "-c", "env")
	vars := strings.Split(strings.TrimSpace(stdout), "\n")
	for _, want := range []string{"PROCTEST_KEEP=kept", "TRIGGER_LOOP_KEY=given"} {
		if !slices.Contains(vars, want) {
			t.Errorf("child environment lacks %s", want)
		}
	}
	if slices.Contains(vars, "TRIGGER_NATS_URL=nats://nowhere:1") {
		t.Error("child environment has the test's TRIGGER_NATS_URL")
	}
}

func TestStopAndSignals(t *testing.T) {
	// trap: exit 0 on SIGTERM. The child sleeps in the background so that
	// the shell runs the trap at once.
	const script = `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05 & wait $!; done`
	p := Start(t, "/bin/sh", "-c", script)
	waitOutput(t, p, "ready")
	p.Stop(t)

	p = Start(t, "/bin/sh", "-c", script)
	waitOutput(t, p, "ready")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t); code != -1 {
		t.Errorf("Wait after SIGKILL = %d, want -1", code)
	}
	if p.Err() == nil {
		t.Error("Err after SIGKILL = nil")
	}

	// ExitCode fails the test when a signal killed the process.
	f := &fakeTB{T: t}
	p = Start(f, "/bin/sh", "-c", "kill -KILL $$")
	if f.call(func(tb testing.TB) { p.ExitCode(tb) }) || !strings.Contains(f.log(), "killed by a signal") {
		t.Errorf("ExitCode of a killed process did not fail the test:\n%s", f.log())
	}
	f.end()
}

func TestKilledAndLoggedAtEnd(t *testing.T) {
	f := &fakeTB{T: t}
	p := StartWith(f, Options{Name: "sleeper", LogTail: 2}, "/bin/sh", "-c", "echo one; echo two; echo three; exec sleep 600")
	waitOutput(t, p, "three")
	f.Errorf("the test fails")
	f.end()
	select {
	case <-p.Exited():
	default:
		t.Fatal("the process still runs after the test ended")
	}
	if ee := p.Err(); ee == nil || !strings.Contains(ee.Error(), "killed") {
		t.Errorf("Err = %v, want killed", ee)
	}
	log := f.log()
	if !strings.Contains(log, "sleeper: sh -c") || !strings.Contains(log, "... (1 lines before)\ntwo\nthree") {
		t.Errorf("failure log lacks the name, command line or the tail of the output:\n%s", log)
	}

	// A passing test logs nothing.
	f = &fakeTB{T: t}
	Start(f, "/bin/sh", "-c", "echo quiet")
	f.end()
	if log := f.log(); log != "" {
		t.Errorf("a passing test logged %q", log)
	}
}

func TestWaitReadyFailsWhenTheProcessExits(t *testing.T) {
	f := &fakeTB{T: t}
	p := StartWith(f, Options{Name: "worker-1"}, "/bin/sh", "-c", "echo bad config >&2; exit 1")
	if f.call(func(tb testing.TB) { p.WaitReady(tb) }) || !strings.Contains(f.log(), "worker-1 exited before it was ready") {
		t.Errorf("WaitReady did not fail at once:\n%s", f.log())
	}
	f.end()
}

func TestBuildNeedsMain(t *testing.T) {
	f := &fakeTB{T: t}
	if f.call(func(tb testing.TB) { Build(tb, "./cmd/trigger-worker") }) || !strings.Contains(f.log(), "proctest.Main") {
		t.Errorf("Build without Main did not fail the test:\n%s", f.log())
	}
}

func TestModuleRoot(t *testing.T) {
	if _, err := os.Stat(ModuleRoot(t) + "/go.mod"); err != nil {
		t.Error(err)
	}
}

func TestTail(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"a\nb\n", 5, "a\nb"},
		{"a\nb\nc\n", 2, "... (1 lines before)\nb\nc"},
	} {
		if got := Tail(tt.s, tt.n); got != tt.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// waitOutput waits until the process has written s to its stdout.
func waitOutput(t *testing.T, p *Process, s string) {
	t.Helper()
	deadline := time.Now().Add(exitTimeout)
	for !strings.Contains(p.Stdout(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within %v", s, exitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
