// Package command is the exec handler kind (kind: exec in a worker's
// config): a [Handler] runs a program for each event, with the event JSON
// on its stdin, and reads the function's result from its stdout with
// [handlers.ParseResult]. It is named for what it runs, so as not to shadow
// os/exec.
//
//	h, err := command.New(command.Config{Command: []string{"/opt/triggers/check-quota"}})
//
// Each call runs in a process group of its own, which is terminated, then
// killed, when the call's context is done, and whatever the program left
// running is killed when it exits. The kind needs a Unix system; elsewhere
// [New] returns an error.
package command
