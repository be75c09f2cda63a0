package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownKeyWithEmptyValue: an unknown key is an error even when its
// value is empty, which viper drops before the strict decode sees it.
func TestUnknownKeyWithEmptyValue(t *testing.T) {
	tests := []struct{ name, give, wantKey string }{
		{"null top-level", "natz:\n", "natz"},
		{"empty map top-level", "natz: {}\n", "natz"},
		{"null nested", "nats:\n  urll:\n", "nats.urll"},
		{"empty map nested", "delivery:\n  backofff: {}\n", "delivery.backofff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `unknown key "`+tt.wantKey+`"`) {
				t.Errorf("Load(%q) = %v, want unknown key %q", tt.give, err, tt.wantKey)
			}
		})
	}
	// Empty known sections stay valid.
	path := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(path, []byte("subjects: {}\nnats:\n  tls: {}\nfunctions:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Errorf("Load(empty sections) = %v, want nil", err)
	}
}
