//go:build !unix

package handlers

import (
	"errors"
	"os/exec"
)

// execSupported is false: without process groups the exec kind could not
// make sure that nothing a command starts outlives its call.
const execSupported = false

func execSetProcessGroup(*exec.Cmd) {}

func execTerminateGroup(int) error { return errors.ErrUnsupported }

func execKillGroup(int) error { return errors.ErrUnsupported }
