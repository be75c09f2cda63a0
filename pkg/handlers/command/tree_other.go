//go:build !linux

package command

import "syscall"

// procTree finds the processes of a command outside its process group on
// Linux only (through /proc). Elsewhere it finds none: a process that left
// the command's process group is not killed with it.
type procTree struct{}

func newProcTree(string) *procTree { return &procTree{} }

func (*procTree) started(int) {}

func (*procTree) signal(syscall.Signal) int { return 0 }

func (*procTree) kill() {}
