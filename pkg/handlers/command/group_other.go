//go:build !unix

package command

import (
	"errors"
	"os/exec"
)

// supported is false: without process groups the exec kind could not
// make sure that nothing a command starts outlives its call.
const supported = false

func setProcessGroup(*exec.Cmd) {}

func terminateGroup(int) error { return errors.ErrUnsupported }

func killGroup(int) error { return errors.ErrUnsupported }
