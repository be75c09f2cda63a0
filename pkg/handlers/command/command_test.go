//go:build unix

package command_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/command"
	"github.com/triggerbus/triggerbus/pkg/handlers/handlerstest"
)

// execBound bounds how long a call that must return promptly may take, and
// the polls for a process to appear or go: a guard against a hang, far
// above what a loaded machine running the race detector needs.
const execBound = 30 * time.Second

func execScript(name string) string { return filepath.Join("testdata", "exec", name) }

// execScriptArg returns the absolute path of a script, for passing it as an
// argument: a command does not run in the test's working directory.
func execScriptArg(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(execScript(name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// execNew returns an exec handler for cfg.
func execNew(t *testing.T, cfg command.Config) *command.Handler {
	t.Helper()
	x, err := command.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) error = %v", cfg, err)
	}
	return x
}

func execEvent() *event.Event {
	return &event.Event{
		ID:            event.NewID(),
		TriggerType:   "PRE_CREATE",
		TriggerOption: "SERVER",
		TimeStamp:     1764420000000,
		Input:         json.RawMessage(`{"resourceName":"web-1","cpu":4}`),
	}
}

// execCheckFor calls f until it returns nil, failing t with its last error
// when that has not happened within d.
func execCheckFor(t *testing.T, d, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(interval)
	}
}

// execReadPids waits for the "<pid> <child pid>" file a test script writes.
func execReadPids(t *testing.T, file string) (pgid, child int) {
	t.Helper()
	execCheckFor(t, execBound, 10*time.Millisecond, func() error {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if _, err := fmt.Sscan(string(data), &pgid, &child); err != nil {
			return fmt.Errorf("%s: %q: %w", file, data, err)
		}
		return nil
	})
	return pgid, child
}

// execAlive reports whether a live process is in the process group pgid
// (group) or has the pid (not group). kill(2) also finds zombies, dead
// processes not yet reaped, which stay when the system's init does not reap
// orphans (as in some containers): where /proc exists, those do not count.
func execAlive(id int, group bool) bool {
	target := id
	if group {
		target = -id
	}
	if err := syscall.Kill(target, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	found, ok := execAnyLive(func(pid int, f []string) bool {
		pgrp, _ := strconv.Atoi(f[2])
		return group && pgrp == id || !group && pid == id
	})
	return found || !ok
}

// execAnyLive reports whether a live process, not a zombie, matches, given
// its pid and the fields of /proc/<pid>/stat after its name (state ppid
// pgrp session ...); ok is false where there is no /proc.
func execAnyLive(match func(pid int, f []string) bool) (found, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if match(pid, f) {
			return true, true
		}
	}
	return false, true
}

// execCheckGone waits until neither the group pgid nor child is alive.
func execCheckGone(t *testing.T, pgid, child int) {
	t.Helper()
	execCheckFor(t, execBound, 10*time.Millisecond, func() error {
		if execAlive(pgid, true) {
			return fmt.Errorf("process group %d still has a live process", pgid)
		}
		if execAlive(child, false) {
			return fmt.Errorf("background child %d is still alive", child)
		}
		return nil
	})
}

// execSessionAlive reports whether a live process is in the session sid,
// as /proc shows it; false where there is no /proc.
func execSessionAlive(sid int) bool {
	found, _ := execAnyLive(func(_ int, f []string) bool {
		s, _ := strconv.Atoi(f[3])
		return s == sid
	})
	return found
}

// TestExecKillsEscapedProcesses: a process that leaves the command's
// process group and session (setsid) is killed with the command, on a
// timeout while its parent runs (found as a descendant, even with an empty
// environment) and after the command has exited (found by the call's
// token).
func TestExecKillsEscapedProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("escaped processes are found through /proc on Linux only")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid command")
	}
	tests := []struct {
		mode    string
		timeout time.Duration // 0: no timeout, the command exits; else long enough for the escape to happen first on a loaded machine
	}{
		{"hang", 2 * time.Second},
		{"hang-noenv", 2 * time.Second},
		{"exit", 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			var h handlers.Handler = execNew(t, command.Config{Command: []string{execScript("escape.sh"), pids, tt.mode}, KillGrace: 200 * time.Millisecond})
			if tt.timeout > 0 {
				h = handlers.Chain(h, handlers.Timeout(tt.timeout))
			}
			res, err := execCall(t, h, t.Context(), execEvent())()
			pgid, escaped := execReadPids(t, pids)
			t.Cleanup(func() {
				_ = syscall.Kill(-escaped, syscall.SIGKILL)
				_ = syscall.Kill(escaped, syscall.SIGKILL)
			})
			switch {
			case tt.timeout > 0 && !errors.Is(err, handlers.ErrTimeout):
				t.Errorf("Handle() = %+v, %v, want an error wrapping ErrTimeout", res, err)
			case tt.timeout == 0 && (err != nil || res.State() != handlers.Success):
				t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
			}
			execCheckGone(t, pgid, escaped)
			execCheckFor(t, execBound, 10*time.Millisecond, func() error {
				if execSessionAlive(escaped) {
					return fmt.Errorf("session %d of the escaped process still has a live process", escaped)
				}
				return nil
			})
		})
	}
}

// execCall runs h.Handle(ctx, ev) in a goroutine; wait returns its result,
// failing t when it has not come within execBound.
func execCall(t *testing.T, h handlers.Handler, ctx context.Context, ev *event.Event) (wait func() (handlers.Result, error)) {
	t.Helper()
	type result struct {
		res handlers.Result
		err error
	}
	done := make(chan result, 1) // the goroutine never blocks on it
	go func() {
		res, err := h.Handle(ctx, ev)
		done <- result{res, err}
	}()
	return func() (handlers.Result, error) {
		t.Helper()
		select {
		case r := <-done:
			return r.res, r.err
		case <-time.After(execBound):
			t.Fatalf("Handle() did not return within %v", execBound)
			return handlers.Result{}, nil
		}
	}
}

func TestExecResult(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want handlers.Result
	}{
		{name: "success", out: `{"exitState":"SUCCESS"}`, want: handlers.Result{ExitState: handlers.Success}},
		{
			name: "failed",
			out:  `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`,
			want: handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"},
		},
		{name: "nothing", out: "", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "blank", out: "\n  \n", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "continue", out: `{"exitState":"CONTINUE"}`, want: handlers.Result{ExitState: handlers.Continue}},
		{
			name: "modified input",
			out:  `{"exitState":"SUCCESS","input":{"cpu":8,"meta":{"x":null,"y":1.5},"big":12345678901234567890}}`,
			want: handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":8,"meta":{"x":null,"y":1.5},"big":12345678901234567890}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := execNew(t, command.Config{Command: []string{execScript("result.sh"), tt.out}})
			got, err := x.Handle(t.Context(), execEvent())
			if err != nil {
				t.Fatalf("Handle() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("not a result", func(t *testing.T) {
		x := execNew(t, command.Config{Command: []string{execScript("result.sh"), "done."}})
		if got, err := x.Handle(t.Context(), execEvent()); !errors.Is(err, handlers.ErrBadResult) {
			t.Errorf("Handle() = %+v, %v, want an error wrapping ErrBadResult", got, err)
		}
	})
}

func TestExecStdin(t *testing.T) {
	out := filepath.Join(t.TempDir(), "stdin")
	x := execNew(t, command.Config{Command: []string{"sh", execScriptArg(t, "stdin.sh"), out}})
	ev := execEvent()
	if _, err := x.Handle(t.Context(), ev); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ev.Encode()
	if !bytes.Equal(got, want) {
		t.Errorf("stdin = %s, want the event JSON %s", got, want)
	}
}

func TestExecArgumentsAreData(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "argv")
	args := []string{
		"a; touch pwned",
		"$(touch pwned)",
		"`touch pwned`",
		"x && touch pwned || touch pwned",
		"line one\nline two\n",
		`"double" 'single' \backslash`,
		"> pwned",
		"*",
		"",
		"  spaced  ",
		"$HOME ${PATH} %s",
		"ünïcode ✓",
	}
	x := execNew(t, command.Config{Command: append([]string{"sh", execScriptArg(t, "argv.sh"), out}, args...), Dir: dir})
	if _, err := x.Handle(t.Context(), execEvent()); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if !reflect.DeepEqual(got, args) {
		t.Errorf("the command got arguments %q, want %q", got, args)
	}
	for _, d := range []string{dir, "."} {
		if _, err := os.Stat(filepath.Join(d, "pwned")); err == nil {
			t.Errorf("an argument ran as a command: %s/pwned exists", d)
		}
	}
}

func TestExecEnv(t *testing.T) {
	t.Setenv("TRIGGERBUS_TEST_SECRET", "hunter2")
	t.Setenv("TRIGGERBUS_TEST_PASSED", "passed value")
	t.Setenv("TRIGGERBUS_TEST_EMPTY", "")
	t.Setenv("HOME", "/home/worker")

	run := func(t *testing.T, ctx context.Context, cfg command.Config, ev *event.Event) map[string]string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "env")
		cfg.Command = []string{execScript("env.sh"), out}
		if _, err := execNew(t, cfg).Handle(ctx, ev); err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for line := range strings.Lines(string(data)) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			env[k] = v
		}
		// What the shell running the script adds by itself.
		for _, k := range []string{"PWD", "OLDPWD", "SHLVL", "_"} {
			delete(env, k)
		}
		return env
	}

	t.Run("minimal", func(t *testing.T) {
		ev := execEvent()
		ctx := handlers.WithCall(t.Context(), handlers.Call{Ref: "f", Origin: "f/" + ev.ID})
		got := run(t, ctx, command.Config{
			Env: []string{"TRIGGERBUS_TEST_PASSED", "TRIGGERBUS_TEST_EMPTY", "TRIGGERBUS_TEST_UNSET"},
		}, ev)
		want := map[string]string{
			"PATH":                   command.DefaultPath,
			"TRIGGER_ORIGIN":         "f/" + ev.ID,
			"TRIGGER_TYPE":           "PRE_CREATE",
			"TRIGGER_OPTION":         "SERVER",
			"TRIGGER_EVENT_ID":       ev.ID,
			"TRIGGERBUS_TEST_PASSED": "passed value",
			"TRIGGERBUS_TEST_EMPTY":  "",
		}
		if len(got["TRIGGER_EXEC_CALL"]) < 16 {
			t.Errorf("TRIGGER_EXEC_CALL = %q, want a token of the call", got["TRIGGER_EXEC_CALL"])
		}
		delete(got, "TRIGGER_EXEC_CALL")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the command's environment is %q, want %q", got, want)
		}
	})
	t.Run("no origin", func(t *testing.T) {
		got := run(t, t.Context(), command.Config{}, execEvent())
		if v, ok := got["TRIGGER_ORIGIN"]; ok {
			t.Errorf("TRIGGER_ORIGIN = %q outside a trigger function's call, want none", v)
		}
		if v, ok := got["TRIGGERBUS_TEST_SECRET"]; ok {
			t.Errorf("TRIGGERBUS_TEST_SECRET = %q, want it not passed", v)
		}
	})
	t.Run("worker PATH", func(t *testing.T) {
		got := run(t, t.Context(), command.Config{Env: []string{"PATH"}}, execEvent())
		if got["PATH"] != os.Getenv("PATH") {
			t.Errorf("PATH = %q, want the worker's %q", got["PATH"], os.Getenv("PATH"))
		}
	})
	t.Run("values at call time", func(t *testing.T) {
		x := command.Config{Env: []string{"TRIGGERBUS_TEST_PASSED"}}
		t.Setenv("TRIGGERBUS_TEST_PASSED", "changed")
		if got := run(t, t.Context(), x, execEvent()); got["TRIGGERBUS_TEST_PASSED"] != "changed" {
			t.Errorf("TRIGGERBUS_TEST_PASSED = %q, want changed", got["TRIGGERBUS_TEST_PASSED"])
		}
	})
}

func TestExecDir(t *testing.T) {
	pwd := func(t *testing.T, x *command.Handler, out string) string {
		t.Helper()
		if _, err := x.Handle(t.Context(), execEvent()); err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	t.Run("fresh per call", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "pwd")
		x := execNew(t, command.Config{Command: []string{execScript("pwd.sh"), out}})
		tmp, err := filepath.EvalSymlinks(os.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		first, second := pwd(t, x, out), pwd(t, x, out)
		if first == second {
			t.Errorf("two calls ran in the same directory %s", first)
		}
		for _, d := range []string{first, second} {
			if filepath.Dir(d) != tmp {
				t.Errorf("the command ran in %s, want a new directory in %s", d, tmp)
			}
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the call's directory %s is still there (%v)", d, err)
			}
		}
	})
	t.Run("configured", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(t.TempDir(), "pwd")
		x := execNew(t, command.Config{Command: []string{execScript("pwd.sh"), out}, Dir: dir})
		want, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := pwd(t, x, out); got != want {
			t.Errorf("the command ran in %s, want %s", got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "leftover")); err != nil {
			t.Errorf("a configured directory was cleaned: %v", err)
		}
	})
}

func TestExecExitError(t *testing.T) {
	for _, code := range []int{1, 3, 125} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			x := execNew(t, command.Config{Command: []string{execScript("fail.sh"), strconv.Itoa(code)}})
			res, err := x.Handle(t.Context(), execEvent())
			var ee *command.Error
			if !errors.As(err, &ee) {
				t.Fatalf("Handle() = %+v, %v, want an *ExecError", res, err)
			}
			if ee.ExitCode != code {
				t.Errorf("ExitCode = %d, want %d", ee.ExitCode, code)
			}
			if len(ee.Stderr) != 4096 || !bytes.HasSuffix(ee.Stderr, []byte("noise line 99 of a stderr longer than the 4 KiB that are kept\nquota service unreachable\n")) {
				t.Errorf("Stderr = %d bytes ending %q, want the last 4096 bytes", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-80):])
			}
			if msg := err.Error(); !strings.Contains(msg, "exit status "+strconv.Itoa(code)) || !strings.Contains(msg, "quota service unreachable") {
				t.Errorf("Error() = %q, want the exit status and the last stderr line", msg)
			}
			if errors.Unwrap(ee) == nil {
				t.Error("ExecError.Unwrap() = nil, want the wait error")
			}
			if !reflect.DeepEqual(res, handlers.Result{}) {
				t.Errorf("Handle() = %+v, want the zero Result", res)
			}
		})
	}
}

func TestExecOutputCap(t *testing.T) {
	fit := `{"exitState":"SUCCESS"}`
	fit += strings.Repeat(" ", 1024-len(fit))
	t.Run("at the cap", func(t *testing.T) {
		x := execNew(t, command.Config{Command: []string{execScript("result.sh"), fit}, MaxOutputBytes: 1024})
		if res, err := x.Handle(t.Context(), execEvent()); err != nil || res.State() != handlers.Success {
			t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
		}
	})
	for _, tt := range []struct{ name, arg string }{{"over the cap", "1025"}, {"endless", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := []string{execScript("flood.sh")}
			if tt.arg != "" {
				cmd = append(cmd, tt.arg)
			}
			x := execNew(t, command.Config{Command: cmd, MaxOutputBytes: 1024})
			res, err := execCall(t, x, t.Context(), execEvent())()
			if err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
				t.Errorf("Handle() = %+v, %v, want an error saying stdout is larger than 1024 bytes", res, err)
			}
		})
	}
}

func TestExecCancelKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{name: "hang", script: "hang.sh"},
		{name: "ignores SIGTERM", script: "hang_noterm.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			x := execNew(t, command.Config{Command: []string{execScript(tt.script), pids}, KillGrace: 200 * time.Millisecond})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			wait := execCall(t, x, ctx, execEvent())
			pgid, child := execReadPids(t, pids)
			if !execAlive(pgid, true) || !execAlive(child, false) {
				t.Fatalf("process group %d or child %d is not alive before the cancel", pgid, child)
			}
			cancel()
			res, err := wait()
			if !errors.Is(err, context.Canceled) || errors.Is(err, handlers.ErrTimeout) {
				t.Errorf("Handle() = %+v, %v, want an error wrapping context.Canceled and not ErrTimeout", res, err)
			}
			execCheckGone(t, pgid, child)
		})
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	const timeout = time.Second
	pids := filepath.Join(t.TempDir(), "pids")
	h := handlers.Chain(execNew(t, command.Config{Command: []string{execScript("hang.sh"), pids}}), handlers.Timeout(timeout))
	start := time.Now()
	res, err := execCall(t, h, t.Context(), execEvent())()
	elapsed := time.Since(start)
	if !errors.Is(err, handlers.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handle() = %+v, %v, want an error wrapping ErrTimeout and context.DeadlineExceeded", res, err)
	}
	if elapsed < timeout {
		t.Errorf("Handle() returned after %v, before the %v timeout", elapsed, timeout)
	}
	pgid, child := execReadPids(t, pids)
	execCheckGone(t, pgid, child)
}

func TestExecBackgroundChildHoldingStdout(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	x := execNew(t, command.Config{Command: []string{execScript("orphan.sh"), pids}, KillGrace: time.Minute})
	res, err := execCall(t, x, t.Context(), execEvent())()
	if err != nil || res.State() != handlers.Success {
		t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
	}
	pgid, child := execReadPids(t, pids)
	execCheckGone(t, pgid, child)
}

func TestExecInputNotRead(t *testing.T) {
	ev := execEvent()
	ev.Input = json.RawMessage(`{"blob":"` + strings.Repeat("x", 1<<20) + `"}`)
	x := execNew(t, command.Config{Command: []string{execScript("noread.sh")}})
	if res, err := execCall(t, x, t.Context(), ev)(); err != nil || res.State() != handlers.Success {
		t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
	}
}

func TestExecLookPath(t *testing.T) {
	bin := t.TempDir()
	prog := filepath.Join(bin, "triggerbus-test-prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nprintf '{\"exitState\":\"SUCCESS\"}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))

	if _, err := command.New(command.Config{Command: []string{"triggerbus-test-prog"}}); !errors.Is(err, handlers.ErrInvalidConfig) {
		t.Errorf("New(program only in the worker's PATH) error = %v, want ErrInvalidConfig", err)
	}
	x := execNew(t, command.Config{Command: []string{"triggerbus-test-prog"}, Env: []string{"PATH"}})
	if res, err := x.Handle(t.Context(), execEvent()); err != nil || res.State() != handlers.Success {
		t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
	}
	// A relative path is taken from the worker's working directory, not
	// the command's.
	x = execNew(t, command.Config{Command: []string{"./" + execScript("noread.sh")}, Dir: t.TempDir()})
	if res, err := x.Handle(t.Context(), execEvent()); err != nil || res.State() != handlers.Success {
		t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
	}
}

func TestExecConfigErrors(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give command.Config
	}{
		{name: "no command", give: command.Config{}},
		{name: "empty program", give: command.Config{Command: []string{""}}},
		{name: "NUL in argument", give: command.Config{Command: []string{"true", "a\x00b"}}},
		{name: "not found", give: command.Config{Command: []string{"triggerbus-no-such-program"}}},
		{name: "missing file", give: command.Config{Command: []string{"testdata/exec/missing.sh"}}},
		{name: "not executable", give: command.Config{Command: []string{notExec}}},
		{name: "directory", give: command.Config{Command: []string{"testdata/exec"}}},
		{name: "env with =", give: command.Config{Command: []string{"true"}, Env: []string{"A=B"}}},
		{name: "empty env name", give: command.Config{Command: []string{"true"}, Env: []string{""}}},
		{name: "reserved env", give: command.Config{Command: []string{"true"}, Env: []string{"TRIGGER_ORIGIN"}}},
		{name: "reserved token env", give: command.Config{Command: []string{"true"}, Env: []string{"TRIGGER_EXEC_CALL"}}},
		{name: "negative output cap", give: command.Config{Command: []string{"true"}, MaxOutputBytes: -1}},
		{name: "negative kill grace", give: command.Config{Command: []string{"true"}, KillGrace: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := command.New(tt.give)
			if !errors.Is(err, handlers.ErrInvalidConfig) {
				t.Errorf("New(%+v) = %v, %v, want an error wrapping ErrInvalidConfig", tt.give, x, err)
			}
		})
	}
}

func TestExecConformance(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	kind := func(cmd ...string) func(t *testing.T) handlers.Handler {
		return func(t *testing.T) handlers.Handler { return execNew(t, command.Config{Command: cmd}) }
	}
	handlerstest.Run(t, handlerstest.Kind{
		Name:     "exec",
		Continue: kind(execScript("continue.sh")),
		Fail:     kind(execScript("result.sh"), `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`),
		Modify:   kind(self, "-test.run=^TestExecHelperProcess$", "--", "triggerbus-exec-helper", "modify"),
		Hang:     kind(execScript("hang.sh")),
		Error:    kind(execScript("fail.sh")),
		Returns: func(t *testing.T, doc string) handlers.Handler {
			return execNew(t, command.Config{Command: []string{execScript("result.sh"), doc}})
		},
	})
}

// TestExecHelperProcess is not a test: the exec tests run the test binary as
// a command through it, for what a shell script cannot do well (the pattern
// of os/exec's own tests).
func TestExecHelperProcess(t *testing.T) {
	args := flag.Args()
	if len(args) != 2 || args[0] != "triggerbus-exec-helper" {
		return
	}
	var ev event.Event
	if err := json.NewDecoder(os.Stdin).Decode(&ev); err != nil {
		fmt.Fprintln(os.Stderr, "event:", err)
		os.Exit(2)
	}
	switch args[1] {
	case "modify":
		input, err := handlerstest.ModifyInput(ev.Input)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		_ = json.NewEncoder(os.Stdout).Encode(handlers.Result{ExitState: handlers.Success, Input: input})
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", args[1])
		os.Exit(2)
	}
	os.Exit(0)
}
