package command

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// Defaults and fixed values of [Handler].
const (
	// DefaultPath is the PATH a command gets unless its config passes the
	// worker's PATH through.
	DefaultPath = "/usr/local/bin:/usr/bin:/bin"

	defaultMaxOutput = 1 << 20
	defaultKillGrace = time.Second
	// stderrTail is how much of the end of stderr an Error keeps.
	stderrTail = 4 << 10
)

// tokenVar is the variable that marks the processes of one call: its
// value is new for each call.
const tokenVar = "TRIGGER_EXEC_CALL"

// reserved are the variables the handler sets itself; a config cannot pass
// them.
var reserved = map[string]bool{
	tokenVar:           true,
	"TRIGGER_ORIGIN":   true,
	"TRIGGER_TYPE":     true,
	"TRIGGER_OPTION":   true,
	"TRIGGER_EVENT_ID": true,
}

// Config configures a [Handler]. Zero fields, except Command, take their
// defaults.
type Config struct {
	// Command is the program and its arguments. It is run directly, never
	// through a shell, so the arguments reach it as they are. A program name
	// without a slash is looked up in the command's PATH (see Env) when the
	// handler is made; a relative path with a slash is relative to the
	// worker's working directory.
	Command []string
	// Env names the worker's environment variables the command gets, with
	// their values at the time of each call; an unset one is left out.
	// Nothing else of the worker's environment is passed. Besides these the
	// command gets PATH (DefaultPath, or the worker's PATH when Env names
	// PATH), TRIGGER_TYPE, TRIGGER_OPTION, TRIGGER_EVENT_ID,
	// TRIGGER_EXEC_CALL (a value new for each call, by which the handler
	// finds the processes of the call) and, for a call caused by a trigger
	// function's event, TRIGGER_ORIGIN; those TRIGGER_ names cannot be
	// listed.
	Env []string
	// Dir is the command's working directory. Empty: each call runs in a new,
	// empty, private directory that is removed when the call ends, so calls
	// share nothing through it.
	Dir string
	// MaxOutputBytes caps stdout, the result document; 0 means 1 MiB. More
	// output is an error, and the command is killed when it passes the cap.
	// Of stderr only the last 4 KiB are kept, for the error of a failed call.
	MaxOutputBytes int64
	// KillGrace is how long the command has to exit after SIGTERM once the
	// call's context is done, before SIGKILL; 0 means 1s. It is short on
	// purpose: the call has already run out of time, and the caller of a PRE
	// trigger is waiting.
	KillGrace time.Duration
}

// setDefaults fills the zero fields.
func (c *Config) setDefaults() {
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = defaultMaxOutput
	}
	if c.KillGrace == 0 {
		c.KillGrace = defaultKillGrace
	}
}

// Validate reports whether c is a valid config, with an error wrapping
// [handlers.ErrInvalidConfig] that says why. It does no I/O: whether the
// program exists is checked by [New].
func (c Config) Validate() error {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return fmt.Errorf("%w: exec command is empty", handlers.ErrInvalidConfig)
	}
	for i, arg := range c.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("%w: exec command argument %d has a NUL byte", handlers.ErrInvalidConfig, i)
		}
	}
	for _, name := range c.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("%w: exec env %q is not a variable name", handlers.ErrInvalidConfig, name)
		}
		if reserved[name] {
			return fmt.Errorf("%w: exec env %q is set by the handler itself", handlers.ErrInvalidConfig, name)
		}
	}
	if strings.IndexByte(c.Dir, 0) >= 0 {
		return fmt.Errorf("%w: exec dir has a NUL byte", handlers.ErrInvalidConfig)
	}
	if c.MaxOutputBytes < 0 {
		return fmt.Errorf("%w: exec max output bytes %d is negative", handlers.ErrInvalidConfig, c.MaxOutputBytes)
	}
	if c.KillGrace < 0 {
		return fmt.Errorf("%w: exec kill grace %v is negative", handlers.ErrInvalidConfig, c.KillGrace)
	}
	return nil
}

// Handler is the exec handler kind: it runs a command for each event, with the
// event JSON on stdin and a minimal environment, and reads the function's
// result from stdout. The command runs in a process group of its own: when
// the call's context is done the group gets SIGTERM, then SIGKILL after the
// kill grace, and when the command exits whatever it left running in its
// group is killed. On Linux the same goes for the processes it started that
// left the group (setsid, setpgid): they are found through /proc, by their
// parents and by the call's TRIGGER_EXEC_CALL token (see docs/security.md
// for what can still escape). A Handler holds no resources and is safe for
// concurrent use.
type Handler struct {
	cfg     Config
	program string // the resolved path of Command[0]
	passEnv []string
	worker  bool // PATH comes from the worker's environment
}

var (
	_ handlers.Handler   = (*Handler)(nil)
	_ handlers.WaitsOnIO = (*Handler)(nil)
)

// WaitsOnIO is true: a call waits on the program it starts.
func (h *Handler) WaitsOnIO() bool { return true }

// New returns an exec handler for cfg. It looks the program up; errors
// about the config wrap [handlers.ErrInvalidConfig].
func New(cfg Config) (*Handler, error) {
	if !supported {
		return nil, fmt.Errorf("%w: exec handlers need a Unix system", handlers.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Command = append([]string(nil), cfg.Command...)
	x := &Handler{cfg: cfg}
	for _, name := range cfg.Env {
		if name == "PATH" {
			x.worker = true
			continue
		}
		x.passEnv = append(x.passEnv, name)
	}
	if cfg.Dir != "" {
		dir, err := filepath.Abs(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: exec dir: %w", handlers.ErrInvalidConfig, err)
		}
		x.cfg.Dir = dir
	}
	program, err := lookPath(cfg.Command[0], x.path())
	if err != nil {
		return nil, err
	}
	x.program = program
	return x, nil
}

// path returns the PATH of the command.
func (x *Handler) path() string {
	if x.worker {
		if p := os.Getenv("PATH"); p != "" {
			return p
		}
	}
	return DefaultPath
}

// lookPath finds the executable file of name: name itself (made
// absolute) when it has a slash, else the first match in the absolute
// directories of path. The working directory is never searched.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", fmt.Errorf("%w: exec command %q: %w", handlers.ErrInvalidConfig, name, err)
		}
		if err := checkExecutable(abs); err != nil {
			return "", fmt.Errorf("%w: exec command %q: %w", handlers.ErrInvalidConfig, name, err)
		}
		return abs, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: exec command %q is not in PATH %s", handlers.ErrInvalidConfig, name, path)
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Error is the error of a command that exited with a non-zero status or
// was killed by a signal.
type Error struct {
	// ExitCode is the exit status; -1 when a signal killed the command.
	ExitCode int
	// Stderr is the end of what the command wrote to stderr: at most 4 KiB.
	Stderr []byte
	// Err is the error of the wait, an *exec.ExitError.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("handlers: exec: ")
	if e.ExitCode >= 0 || e.Err == nil {
		fmt.Fprintf(&b, "exit status %d", e.ExitCode)
	} else {
		b.WriteString(e.Err.Error())
	}
	if line := lastLine(e.Stderr); line != "" {
		fmt.Fprintf(&b, ": %q", line)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// lastLine returns the last non-empty line of stderr, cut to 200 bytes.
func lastLine(stderr []byte) string {
	s := strings.TrimRight(string(stderr), " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Handle runs the command for ev. Exit status 0 with a JSON result document
// on stdout (or nothing) is the result, read with [handlers.ParseResult]; a
// non-zero status is an *[Error]; more stdout than the cap is an error; a
// call whose context ends returns once the command's process group is gone,
// with an error wrapping the context's error (and [handlers.ErrTimeout] for a
// deadline).
func (x *Handler) Handle(ctx context.Context, ev *event.Event) (handlers.Result, error) {
	if ev == nil {
		return handlers.Result{}, errors.New("handlers: exec: nil event")
	}
	input, err := ev.Encode()
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: exec: encode event: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return handlers.Result{}, x.ctxError(err, nil)
	}
	dir := x.cfg.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "triggerbus-exec-")
		if err != nil {
			return handlers.Result{}, fmt.Errorf("handlers: exec: working directory: %w", err)
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				c, _ := handlers.CallFrom(ctx)
				c.Logger.WarnContext(ctx, "exec working directory not removed", "dir", dir, "err", err)
			}
		}()
	}
	token := rand.Text()
	env := append(x.environ(ctx, ev), tokenVar+"="+token)
	return x.run(ctx, dir, env, input, newProcTree(token))
}

// environ returns the command's environment for ev.
func (x *Handler) environ(ctx context.Context, ev *event.Event) []string {
	env := make([]string, 0, 6+len(x.passEnv))
	env = append(env, "PATH="+x.path())
	origin, ok := event.OriginFrom(ctx)
	if !ok {
		if c, _ := handlers.CallFrom(ctx); c.Origin != "" {
			origin, ok = c.Origin, true
		}
	}
	if ok {
		env = append(env, "TRIGGER_ORIGIN="+origin)
	}
	env = append(env,
		"TRIGGER_TYPE="+ev.TriggerType,
		"TRIGGER_OPTION="+ev.TriggerOption,
		"TRIGGER_EVENT_ID="+ev.ID,
	)
	for _, name := range x.passEnv {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// run starts the command in dir with env, feeds it input and collects its
// output. The command's stdin, stdout and stderr are pipes this function
// reads and writes itself rather than through exec.Cmd, so that Wait returns
// as soon as the command exits even when something it started still holds
// them; the process group and tree are then killed, and the pipes end with
// them.
func (x *Handler) run(ctx context.Context, dir string, env []string, input []byte, tree *procTree) (handlers.Result, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	stdinR, stdinW, err1 := pipe()
	stdoutR, stdoutW, err2 := pipe()
	stderrR, stderrW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return handlers.Result{}, fmt.Errorf("handlers: exec: %w", err)
	}
	defer closeAll()

	cmd := exec.CommandContext(ctx, x.program, x.cfg.Command[1:]...)
	cmd.Args[0] = x.cfg.Command[0]
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	setProcessGroup(cmd)
	cmd.Cancel = func() error {
		tree.signal(syscall.SIGTERM)
		return terminateGroup(cmd.Process.Pid)
	}
	cmd.WaitDelay = x.cfg.KillGrace
	err := cmd.Start()
	// The command has its own copies of its ends of the pipes.
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: exec %q: %w", x.cfg.Command[0], err)
	}
	pgid := cmd.Process.Pid
	tree.started(pgid)

	var (
		wg     sync.WaitGroup
		stdout []byte
		over   bool
		stderr tail
	)
	wg.Go(func() {
		// A command may exit without reading its input: the write then
		// fails, and that is not an error of the call.
		_, _ = stdinW.Write(input)
		stdinW.Close()
	})
	wg.Go(func() {
		stdout, _ = io.ReadAll(io.LimitReader(stdoutR, capPlusOne(x.cfg.MaxOutputBytes)))
		if int64(len(stdout)) > x.cfg.MaxOutputBytes {
			over = true
			tree.kill()
			_ = killGroup(pgid)
			_, _ = io.Copy(io.Discard, stdoutR)
		}
	})
	wg.Go(func() { _, _ = io.Copy(&stderr, stderrR) })

	waitErr := cmd.Wait()
	// Whatever the command left running, in its group or not, goes with it.
	_ = killGroup(pgid)
	tree.kill()
	// The pipes end when the last process holding them is gone. One that
	// left the process group could hold them on: bound the wait.
	deadline := time.Now().Add(x.cfg.KillGrace)
	_ = stdinW.SetWriteDeadline(deadline)
	_ = stdoutR.SetReadDeadline(deadline)
	_ = stderrR.SetReadDeadline(deadline)
	wg.Wait()

	if cause := ctx.Err(); cause != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return handlers.Result{}, x.ctxError(cause, &Error{ExitCode: ee.ExitCode(), Stderr: stderr.bytes(), Err: waitErr})
		}
		return handlers.Result{}, x.ctxError(cause, nil)
	}
	if over {
		return handlers.Result{}, fmt.Errorf("handlers: exec %q: stdout is larger than %d bytes", x.cfg.Command[0], x.cfg.MaxOutputBytes)
	}
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return handlers.Result{}, &Error{ExitCode: ee.ExitCode(), Stderr: stderr.bytes(), Err: waitErr}
		}
		return handlers.Result{}, fmt.Errorf("handlers: exec %q: %w", x.cfg.Command[0], waitErr)
	}
	res, err := handlers.ParseResult(stdout)
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: exec %q: stdout: %w", x.cfg.Command[0], err)
	}
	return res, nil
}

// ctxError is the error of a call whose context ended with cause; exit, when
// not nil, is how the command ended.
func (x *Handler) ctxError(cause error, exit *Error) error {
	prefix := "handlers: exec"
	var args []any
	if handlers.IsTimeout(cause) {
		prefix = "%w: exec"
		args = append(args, handlers.ErrTimeout)
	}
	args = append(args, x.cfg.Command[0], cause)
	if exit == nil {
		return fmt.Errorf(prefix+" %q: %w", args...)
	}
	return fmt.Errorf(prefix+" %q: %w (%w)", append(args, exit)...)
}

// tail keeps the last stderrTail bytes written to it.
type tail struct{ buf []byte }

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= stderrTail {
		t.buf = append(t.buf[:0], p[len(p)-stderrTail:]...)
		return n, nil
	}
	if extra := len(t.buf) + len(p) - stderrTail; extra > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[extra:])]
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) bytes() []byte { return bytes.Clone(t.buf) }

// capPlusOne returns n+1, the read limit that tells whether more than n
// bytes came, without overflowing.
func capPlusOne(n int64) int64 {
	if n == math.MaxInt64 {
		return n
	}
	return n + 1
}
