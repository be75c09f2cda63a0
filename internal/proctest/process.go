package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

// exitTimeout bounds how long a test waits for a process to exit.
const exitTimeout = 60 * time.Second

// Env returns the environment of a child process: the test's, without the
// variables that would change trigger-worker's configuration (TRIGGER_*,
// NATS_URL, NATS_CONTEXT), followed by extra ("NAME=value" each).
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIGGER_") && !strings.HasPrefix(kv, "NATS_URL=") && !strings.HasPrefix(kv, "NATS_CONTEXT=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers,
// such as a child's output and the test reading it. The zero value is
// empty and ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n lines of s, after a line saying how many came
// before them.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Options are the settings of a child process that most tests leave at
// their zero values.
type Options struct {
	// Name is what failure messages call the process, such as "worker-2"
	// when a test runs several. The default is the base name of the
	// program.
	Name string
	// Env is added to the environment (see [Env]).
	Env []string
	// LogTail, when positive, limits the output logged when the test
	// fails to the last LogTail lines of stdout and of stderr, for
	// long-running processes. Zero logs all of it.
	LogTail int
}

// Process is a child process a test started with [Start] or [StartWith].
type Process struct {
	name   string
	cmd    *exec.Cmd
	stdout SyncBuffer
	stderr SyncBuffer
	exited chan struct{} // closed when the process has exited and err is set
	err    error
}

// Start starts the program bin with args, as [StartWith] with no options.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartWith(t, Options{}, bin, args...)
}

// StartWith starts the program bin with args in a new temporary working
// directory, which is also its HOME (XDG_STATE_HOME below it), with the
// environment of [Env] plus o.Env. The process is
// killed, if it still runs, when the test ends; its output is logged if
// the test failed.
func StartWith(t testing.TB, o Options, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{name: o.Name, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	if p.name == "" {
		p.name = filepath.Base(bin)
	}
	p.cmd.Dir = t.TempDir()
	// The working directory is the child's home too, so that nothing it
	// keeps per user (the embedded server's store) lands in the real home;
	// o.Env may name others.
	p.cmd.Env = Env(append([]string{"HOME=" + p.cmd.Dir, "XDG_STATE_HOME=" + filepath.Join(p.cmd.Dir, ".state")}, o.Env...)...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	})
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
		}
		wg.Wait()
		if t.Failed() {
			stdout, stderr := p.stdout.String(), p.stderr.String()
			if o.LogTail > 0 {
				stdout, stderr = Tail(stdout, o.LogTail), Tail(stderr, o.LogTail)
			}
			cmdline := strings.Join(append([]string{filepath.Base(bin)}, args...), " ")
			if p.name != filepath.Base(bin) {
				cmdline = p.name + ": " + cmdline
			}
			t.Logf("%s\nstdout:\n%s\nstderr:\n%s", cmdline, stdout, stderr)
		}
	})
	return p
}

// Run runs the program bin with args to the end, as [RunWith] with no
// options.
func Run(t testing.TB, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return RunWith(t, Options{}, bin, args...)
}

// RunWith starts the program bin with args as [StartWith] does, waits for
// it to exit as [Process.ExitCode] does, and returns its exit code and
// output.
func RunWith(t testing.TB, o Options, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := StartWith(t, o, bin, args...)
	code = p.ExitCode(t)
	return code, p.Stdout(), p.Stderr()
}

// Stdout returns what the process has written to its standard output so
// far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns what the process has written to its standard error so
// far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err returns the error of the process's exit as exec.Cmd.Wait reports it:
// nil while it runs or when it exited 0.
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Signal sends sig to the process, and fails the test if that fails.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL to the process, as os.Process.Kill does.
func (p *Process) Kill() error { return p.cmd.Process.Kill() }

// ExitCode waits for the process to exit and returns its exit code. It
// fails the test when the process was killed by a signal, or does not exit
// within a minute.
func (p *Process) ExitCode(t testing.TB) int {
	t.Helper()
	code, sig := p.wait(t)
	if sig != nil {
		t.Fatalf("%s was killed by a signal: %v", p.name, sig)
	}
	return code
}

// Wait waits for the process to exit and returns its exit code, or -1 when
// it was killed by a signal (as os.ProcessState.ExitCode), for a process
// the test may have killed. It fails the test when the process does not
// exit within a minute.
func (p *Process) Wait(t testing.TB) int {
	t.Helper()
	code, _ := p.wait(t)
	return code
}

// wait waits for the process to exit and returns its exit code, or -1 and
// the signal that killed it.
func (p *Process) wait(t testing.TB) (int, os.Signal) {
	t.Helper()
	natstest.ChanRecv(t, p.exited, exitTimeout)
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0, nil
	case errors.As(p.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, ws.Signal()
		}
		return ee.ExitCode(), nil
	}
	t.Fatalf("%s: wait: %v", p.name, p.err)
	return -1, nil
}

// Stop sends SIGTERM to the process and waits for it to exit, as
// [Process.ExitCode] does; the test fails unless it exits 0.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0", p.name, code)
	}
}
