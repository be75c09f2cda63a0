package main

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/triggerbus/triggerbus", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		name           string
		v, rev         string
		bi             *debug.BuildInfo
		wantV, wantRev string
	}{
		{"go install @tag", "dev", "unknown", info("v1.2.3"), "v1.2.3", "unknown"},
		{"go install @commit", "dev", "unknown", info("v0.0.0-20261205144500-0123456789ab"), "v0.0.0-20261205144500-0123456789ab", "0123456789ab"},
		{"pre-release pseudo-version", "dev", "unknown", info("v1.2.4-0.20261205144500-0123456789ab"), "v1.2.4-0.20261205144500-0123456789ab", "0123456789ab"},
		{"build in a checkout", "dev", "unknown", info("(devel)", "vcs.revision", "abc123", "vcs.modified", "false"), "dev", "abc123"},
		{"dirty checkout", "dev", "unknown", info("(devel)", "vcs.revision", "abc123", "vcs.modified", "true"), "dev", "abc123-dirty"},
		{"ldflags win", "v9.9.9", "feedface", info("v1.2.3", "vcs.revision", "abc123"), "v9.9.9", "feedface"},
		{"no build info", "dev", "unknown", nil, "dev", "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, rev := fromBuildInfo(tt.v, tt.rev, tt.bi)
			if v != tt.wantV || rev != tt.wantRev {
				t.Errorf("fromBuildInfo = %q, %q; want %q, %q", v, rev, tt.wantV, tt.wantRev)
			}
		})
	}
}
