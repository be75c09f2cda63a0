package main

import (
	"regexp"
	"runtime/debug"
)

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, revision = fromBuildInfo(version, revision, bi)
	}
}

// pseudoRev is the commit at the end of a pseudo-version
// (v0.0.0-20261205144500-0123456789ab, and its +incompatible or
// pre-release forms).
var pseudoRev = regexp.MustCompile(`[-.]\d{14}-([0-9a-f]{12})(\+incompatible)?$`)

// fromBuildInfo fills in what -ldflags did not set (v "dev", rev
// "unknown") from the build information the go command records: the main
// module's version, which `go install .../cmd/trigger-worker@v1.2.3` sets
// (a build in a checkout says "(devel)", which is not a version), and the
// commit: vcs.revision with "-dirty" for uncommitted changes in a checkout,
// else the commit of a pseudo-version.
func fromBuildInfo(v, rev string, bi *debug.BuildInfo) (string, string) {
	if bi == nil {
		return v, rev
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if rev != "unknown" {
		return v, rev
	}
	var vcsRev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case vcsRev != "":
		rev = vcsRev
		if modified {
			rev += "-dirty"
		}
	default:
		if m := pseudoRev.FindStringSubmatch(bi.Main.Version); m != nil {
			rev = m[1]
		}
	}
	return v, rev
}
