package command

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// The process tree of a command, on Linux. A command runs in a process
// group of its own, but a process it starts may leave the group (setsid,
// setpgid) and so escape a signal to the group. procTree finds those
// through /proc:
//
//   - while the command runs, every process whose chain of parents leads
//     to it (its descendants, whatever their group or session);
//   - once a parent has exited and its children were handed to init (or
//     another subreaper), the processes that carry the call's token in the
//     environment they started with (TRIGGER_EXEC_CALL, inherited by
//     default), and their descendants;
//   - the processes found before, as long as they still have the same start
//     time (a pid may be reused).
//
// What remains: a process that left the group and cleared or replaced its
// environment, and whose parents have all exited before the tree is read,
// is not found. Neither is one that changed its uid (its environment cannot
// be read) or a fork bomb that outruns the bounded kill rounds.

// proc is one process as /proc shows it.
type proc struct {
	ppid  int
	start uint64 // start time, clock ticks after boot
}

// procTree is what one call knows of its command's processes. It is safe
// for concurrent use: os/exec calls Cancel on a goroutine of its own.
type procTree struct {
	token string
	mu    sync.Mutex
	root  int
	since uint64         // the root's start time
	known map[int]uint64 // processes found so far, by pid, with their start time
	procs map[int]proc   // the last read of /proc
	kids  map[int][]int  // children by parent, of the last read
}

func newProcTree(token string) *procTree { return &procTree{token: token} }

// started records the command's pid.
func (t *procTree) started(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.root = pid
	if p, ok := readProc(pid); ok {
		t.since = p.start
	}
}

// signal sends sig to every process of the tree that it finds now. It
// returns how many it signalled.
func (t *procTree) signal(sig syscall.Signal) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root == 0 {
		return 0
	}
	n := 0
	for pid := range t.find() {
		if err := syscall.Kill(pid, sig); err == nil {
			n++
		}
	}
	return n
}

// kill sends SIGKILL to the tree until none of it is found, in a bounded
// number of rounds (a process may fork while the signals go out).
func (t *procTree) kill() {
	for range killRounds {
		if t.signal(syscall.SIGKILL) == 0 {
			return
		}
	}
}

// killRounds bounds the rounds of procTree.kill.
const killRounds = 8

// find reads /proc and returns the live processes of the tree, which it
// also remembers. The caller holds t.mu.
func (t *procTree) find() map[int]struct{} {
	if !t.read() {
		return nil
	}
	if t.known == nil {
		t.known = make(map[int]uint64)
	}
	found := make(map[int]struct{})
	var queue []int
	add := func(pid int) {
		if _, ok := found[pid]; ok || pid == os.Getpid() {
			return
		}
		found[pid] = struct{}{}
		queue = append(queue, pid)
	}
	if p, ok := t.procs[t.root]; ok && p.start == t.since {
		add(t.root)
	}
	for pid, start := range t.known {
		if p, ok := t.procs[pid]; ok && p.start == start {
			add(pid)
		}
	}
	for pid, p := range t.procs {
		if p.start >= t.since && t.carriesToken(pid) {
			add(pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range t.kids[pid] {
			add(c)
		}
	}
	for pid := range found {
		t.known[pid] = t.procs[pid].start
	}
	return found
}

// read reads the parent and start time of every live process. Zombies
// are left out: they are gone but for their exit status.
func (t *procTree) read() bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	clear(t.procs)
	clear(t.kids)
	if t.procs == nil {
		t.procs = make(map[int]proc, len(entries))
		t.kids = make(map[int][]int, len(entries))
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok {
			continue
		}
		t.procs[pid] = p
		t.kids[p.ppid] = append(t.kids[p.ppid], pid)
	}
	return true
}

// carriesToken reports whether the environment pid started with holds the
// call's token.
func (t *procTree) carriesToken(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(tokenVar + "=" + t.token)
	for v := range bytes.SplitSeq(data, []byte{0}) {
		if bytes.Equal(v, want) {
			return true
		}
	}
	return false
}

// readProc reads the parent and start time of a live process.
func readProc(pid int) (proc, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return proc{}, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 20 || f[0][0] == 'Z' || f[0][0] == 'X' {
		return proc{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if errors.Join(err1, err2) != nil {
		return proc{}, false
	}
	return proc{ppid: ppid, start: start}, true
}
