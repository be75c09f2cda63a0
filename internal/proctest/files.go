package proctest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteFile writes content to the file name in dir, readable by its owner
// only, and returns its path. It fails the test if that fails.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// LogCapture is a slog logger at debug level, in the text format, whose
// output the test reads.
type LogCapture struct {
	// Logger writes to the capture.
	Logger *slog.Logger
	buf    SyncBuffer
}

// NewLogCapture returns an empty capture.
func NewLogCapture() *LogCapture {
	c := &LogCapture{}
	c.Logger = slog.New(slog.NewTextHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return c
}

// String returns what was logged so far.
func (c *LogCapture) String() string { return c.buf.String() }

// Count returns how many lines logged so far contain s.
func (c *LogCapture) Count(s string) int {
	n := 0
	for line := range strings.Lines(c.String()) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
