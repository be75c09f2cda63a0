package cowmap_test

import (
	"testing"

	"github.com/triggerbus/triggerbus/internal/cowmap"
)

func TestMap(t *testing.T) {
	var m cowmap.Map[string, int]
	if _, ok := m.Get("a"); ok {
		t.Fatal("empty map has a")
	}
	if v := m.GetOrAdd("a", func() int { return 1 }); v != 1 {
		t.Fatalf("GetOrAdd(a) = %d, want 1", v)
	}
	if v := m.GetOrAdd("a", func() int { return 2 }); v != 1 {
		t.Fatalf("GetOrAdd(a) again = %d, want the first value 1", v)
	}
	m.Add("a", 3, 10) // has a value: kept
	m.Add("b", 4, 2)
	m.Add("c", 5, 2) // the map holds 2: not added
	for k, want := range map[string]int{"a": 1, "b": 4} {
		if v, ok := m.Get(k); !ok || v != want {
			t.Fatalf("Get(%s) = %d, %v; want %d", k, v, ok, want)
		}
	}
	if _, ok := m.Get("c"); ok {
		t.Fatal("c was added beyond the limit")
	}
}
