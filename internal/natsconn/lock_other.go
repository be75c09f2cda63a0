//go:build !unix

package natsconn

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile does not lock where flock is missing: the store is not guarded.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
