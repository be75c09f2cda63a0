package natsconn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file [LockStore] keeps in a store
// directory; it holds the pid of the process that has the directory.
const LockFile = "triggerbus.lock"

// DefaultStoreDir is the embedded server's JetStream directory when none is
// configured: $XDG_STATE_HOME/triggerbus, else ~/.local/state/triggerbus
// (per user, kept across reboots, unlike the temp directory).
func DefaultStoreDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "triggerbus"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("natsconn: no store directory (set nats.embedded.store_dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "triggerbus"), nil
}

// StoreLockedError is the error of [LockStore] when another process has
// the directory.
type StoreLockedError struct {
	Dir string
	// PID is the other process's, 0 when its lock file does not say.
	PID int
}

func (e *StoreLockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("store directory %s is in use by %s (lock %s): stop it, or give this worker its own nats.embedded.store_dir",
		e.Dir, who, filepath.Join(e.Dir, LockFile))
}

// LockStore creates dir (0700) and locks it for this process, so that two
// embedded servers never share one JetStream store: the lock is an
// exclusive flock on dir/triggerbus.lock, which records this process's pid.
// When another process holds it, the error is a [*StoreLockedError] naming
// that process. unlock releases it; so does the process's exit, however it
// ends.
func LockStore(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("natsconn: store directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("natsconn: store lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			pid, _ := os.ReadFile(path)
			n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
			return nil, &StoreLockedError{Dir: dir, PID: n}
		}
		return nil, fmt.Errorf("natsconn: store lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = unlockFile(f)
		_ = f.Close()
	}, nil
}
