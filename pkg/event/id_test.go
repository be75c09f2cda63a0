package event

import (
	"strings"
	"testing"
	"time"
)

// idTime returns the millisecond timestamp in the first 10 characters of id
// (50 bits, the top 2 of them zero).
func idTime(t *testing.T, id string) int64 {
	t.Helper()
	var ms int64
	for _, c := range id[:10] {
		i := strings.IndexRune(crockford, c)
		if i < 0 {
			t.Fatalf("id %q has %q, not Crockford base32", id, c)
		}
		ms = ms<<5 | int64(i)
	}
	return ms
}

func TestNewID(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewID()
	after := time.Now().UnixMilli()
	if len(id) != 26 {
		t.Fatalf("NewID() = %q, %d characters, want 26", id, len(id))
	}
	for _, c := range id {
		if !strings.ContainsRune(crockford, c) {
			t.Fatalf("NewID() = %q has %q, not Crockford base32", id, c)
		}
	}
	if strings.ContainsAny(id, "ILOU") {
		t.Fatalf("NewID() = %q has a letter Crockford base32 leaves out", id)
	}
	if id[0] > '7' {
		t.Errorf("NewID() = %q: the first character holds 3 bits, want 0-7", id)
	}
	if ms := idTime(t, id); ms < before || ms > after {
		t.Errorf("NewID() = %q holds time %d, want %d..%d", id, ms, before, after)
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	prev := NewID()
	for range 3 {
		// Wait for the clock to reach the next millisecond.
		for start := time.Now().UnixMilli(); time.Now().UnixMilli() == start; {
		}
		next := NewID()
		if next <= prev {
			t.Fatalf("NewID() = %q after %q a millisecond later, want it to sort after", next, prev)
		}
		prev = next
	}
}

func TestNewIDUnique(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for range n {
		id := NewID()
		if seen[id] {
			t.Fatalf("NewID() returned %q twice in %d calls", id, n)
		}
		seen[id] = true
	}
}

func TestNewIDAt(t *testing.T) {
	at := time.UnixMilli(1764950000123)
	a, b := NewIDAt(at), NewIDAt(at)
	if got := idTime(t, a); got != at.UnixMilli() {
		t.Errorf("NewIDAt(%d) = %q, time %d", at.UnixMilli(), a, got)
	}
	if a == b {
		t.Errorf("NewIDAt twice at the same time = %q both times", a)
	}
}
