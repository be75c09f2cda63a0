//go:build !linux

package handlers

import "syscall"

// execTree finds the processes of a command outside its process group on
// Linux only (through /proc). Elsewhere it finds none: a process that left
// the command's process group is not killed with it.
type execTree struct{}

func newExecTree(string) *execTree { return &execTree{} }

func (*execTree) started(int) {}

func (*execTree) signal(syscall.Signal) int { return 0 }

func (*execTree) kill() {}
