package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxStatusProblems bounds the problems /readyz lists; the log has them all.
const maxStatusProblems = 20

// loadStatus is what /readyz says about the functions served: when they were
// loaded, and whether the last reload failed and why. It is safe for
// concurrent use (the HTTP server reads it while the SIGHUP loop writes).
type loadStatus struct {
	mu        sync.Mutex
	appliedAt time.Time // when the functions served were loaded
	ignored   []string  // problems allow_partial let through at that load
	failedAt  time.Time // when the last reload failed; zero if it did not
	failures  []string  // the problems of that reload
	// Bundle mode: revision is the revision served (0 none yet), waiting
	// why there is none yet.
	revision uint64
	waiting  string
}

func newLoadStatus(at time.Time, ignored []error) *loadStatus {
	s := &loadStatus{}
	s.applied(at, ignored)
	return s
}

// applied records functions loaded at t; ignored are the problems partial
// loading let through.
func (s *loadStatus) applied(t time.Time, ignored []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appliedAt, s.ignored = t, errorTexts(ignored)
	s.failedAt, s.failures = time.Time{}, nil
}

// setWaiting records why no functions are served yet (bundle mode); it
// reports whether the reason changed.
func (s *loadStatus) setWaiting(reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := s.waiting != reason
	s.waiting = reason
	return changed
}

// appliedRevision records bundle revision rev loaded at t.
func (s *loadStatus) appliedRevision(t time.Time, rev uint64) {
	s.applied(t, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revision, s.waiting = rev, ""
}

// failed records a reload at t that kept the functions served.
func (s *loadStatus) failed(t time.Time, problems []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedAt, s.failures = t, errorTexts(problems)
}

// String is the part of the /readyz body about the functions, one fact a
// line.
func (s *loadStatus) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	served := "the functions loaded at " + stamp(s.appliedAt)
	if s.revision != 0 {
		served = fmt.Sprintf("revision %d of the function bundle, loaded at %s", s.revision, stamp(s.appliedAt))
	}
	if s.waiting != "" {
		fmt.Fprintf(&b, "no functions served: %s\n", s.waiting)
		if !s.failedAt.IsZero() {
			fmt.Fprintf(&b, "last load failed at %s with %d problem(s)\n", stamp(s.failedAt), len(s.failures))
			writeStatusList(&b, s.failures)
		}
		return b.String()
	}
	if !s.failedAt.IsZero() {
		fmt.Fprintf(&b, "last reload failed at %s with %d problem(s); still serving %s\n",
			stamp(s.failedAt), len(s.failures), served)
		writeStatusList(&b, s.failures)
		return b.String()
	}
	if s.revision != 0 {
		fmt.Fprintf(&b, "serving %s\n", served)
	} else {
		fmt.Fprintf(&b, "functions loaded at %s\n", stamp(s.appliedAt))
	}
	if len(s.ignored) > 0 {
		fmt.Fprintf(&b, "allow_partial: %d problem(s) ignored, those functions are not served\n", len(s.ignored))
		writeStatusList(&b, s.ignored)
	}
	return b.String()
}

func writeStatusList(b *strings.Builder, items []string) {
	for i, p := range items {
		if i == maxStatusProblems {
			fmt.Fprintf(b, "  ... and %d more (see the log)\n", len(items)-i)
			break
		}
		fmt.Fprintf(b, "  - %s\n", p)
	}
}

func errorTexts(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		// One line each: a problem's text is the only free text in the body.
		out[i] = strings.Join(strings.Fields(e.Error()), " ")
	}
	return out
}
