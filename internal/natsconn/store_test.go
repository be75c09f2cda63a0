package natsconn_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natsconn"
)

func TestDefaultStoreDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, "xdg"))
	if d, err := natsconn.DefaultStoreDir(); err != nil || d != filepath.Join(home, "xdg", "triggerbus") {
		t.Errorf("with XDG_STATE_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	if d, err := natsconn.DefaultStoreDir(); err != nil || d != filepath.Join(home, ".local", "state", "triggerbus") {
		t.Errorf("without XDG_STATE_HOME: %q, %v", d, err)
	}
}

// TestLockStore: a locked store directory cannot be locked again (the
// error names the holder's pid) until it is unlocked.
func TestLockStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	unlock, err := natsconn.LockStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = natsconn.LockStore(dir)
	var locked *natsconn.StoreLockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || locked.Dir != dir {
		t.Fatalf("second lock: %v, want a StoreLockedError naming pid %d", err, os.Getpid())
	}
	unlock()
	unlock2, err := natsconn.LockStore(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}
