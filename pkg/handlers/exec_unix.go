//go:build unix

package handlers

import (
	"errors"
	"os/exec"
	"syscall"
)

const execSupported = true

// execSetProcessGroup makes the command the leader of a new process group,
// whose id is its pid, so that it and everything it starts can be signalled
// together.
func execSetProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// execTerminateGroup sends SIGTERM to the process group pgid.
func execTerminateGroup(pgid int) error { return execSignalGroup(pgid, syscall.SIGTERM) }

// execKillGroup sends SIGKILL to the process group pgid.
func execKillGroup(pgid int) error { return execSignalGroup(pgid, syscall.SIGKILL) }

// execSignalGroup signals the process group pgid; a group that is already
// gone is not an error.
func execSignalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
