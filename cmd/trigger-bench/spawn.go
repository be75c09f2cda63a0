package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// child is a trigger-bench subprocess (__server or __worker) that talks in
// lines: commands on its stdin, answers on its stdout. Its stderr is kept
// (the last few kB) for error messages.
type child struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string   // closed at EOF of stdout
	quit     chan struct{} // closed by close and kill: lines are dropped
	quitOnce sync.Once
	stderr   *tail
	waited   chan error
}

// startChild starts `exe args...`.
func startChild(ctx context.Context, name, exe string, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = os.Environ()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 4), quit: make(chan struct{}), stderr: &tail{max: 8 << 10}, waited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The one goroutine of a child: it reads stdout to its end (handing
	// lines over until the child is being closed), then waits for the exit,
	// as os/exec wants.
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit:
			}
		}
		close(c.lines)
		c.waited <- cmd.Wait()
	}()
	return c, nil
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// expect reads the child's next line, which must start with word; it
// returns the rest of the line.
func (c *child) expect(word string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", c.failure(fmt.Errorf("%s exited before %q", c.name, word))
		}
		if rest, found := strings.CutPrefix(line, "error "); found {
			return "", c.failure(fmt.Errorf("%s: %s", c.name, rest))
		}
		rest, found := strings.CutPrefix(line, word)
		if !found {
			return "", c.failure(fmt.Errorf("%s said %q, want %q", c.name, line, word))
		}
		return strings.TrimSpace(rest), nil
	case <-t.C:
		return "", c.failure(fmt.Errorf("%s did not say %q within %v", c.name, word, timeout))
	}
}

// send writes a command line.
func (c *child) send(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return c.failure(fmt.Errorf("%s: %s: %w", c.name, cmd, err))
	}
	return nil
}

// close closes the child's stdin and waits for it to exit, killing it after
// timeout.
func (c *child) close(timeout time.Duration) error {
	c.quitOnce.Do(func() { close(c.quit) })
	_ = c.stdin.Close()
	select {
	case err := <-c.waited:
		if err != nil {
			return c.failure(fmt.Errorf("%s: %w", c.name, err))
		}
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.waited
		return c.failure(fmt.Errorf("%s did not exit within %v, killed", c.name, timeout))
	}
}

// kill ends the child at once.
func (c *child) kill() {
	c.quitOnce.Do(func() { close(c.quit) })
	_ = c.stdin.Close()
	_ = c.cmd.Process.Kill()
	<-c.waited
}

func (c *child) failure(err error) error {
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		return fmt.Errorf("%w\n--- stderr of %s:\n%s", err, c.name, s)
	}
	return err
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// procCPUSeconds returns the user+system CPU time of process pid from
// /proc/<pid>/stat (clock ticks of 1/100 s, Linux's USER_HZ).
func procCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / 100, nil
}
