package worker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

// TestParseRemembersCatalogueSubjects: an event on a subject parse has seen
// is parsed and counted as the first was; subjects with an option outside
// the catalogue (an open option set's) are counted under "other" each time
// and not remembered.
func TestParseRemembersCatalogueSubjects(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(natstest.Connect(t, natstest.RunServer(t)), Config{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	known, _ := w.scheme.Build("POST_CREATE", "SERVER")
	open, _ := w.scheme.Build("POST_USER_API_CALL", "someNewMethod")
	for range 3 {
		for _, subject := range []string{known, open} {
			in := inbound{subject: subject}
			if !w.parse(&in) || in.subj.Type == nil {
				t.Fatalf("parse(%q) failed: %v", subject, in.err)
			}
		}
	}
	if in := (inbound{subject: known}); !w.parse(&in) || in.subj.Type.Name != "POST_CREATE" || in.subj.Option != "SERVER" {
		t.Errorf("parse(%q) again = %+v", known, in.subj)
	}
	if got := testutil.ToFloat64(m.EventsReceived.WithLabelValues("POST_CREATE", "SERVER")); got != 4 {
		t.Errorf("received POST_CREATE SERVER = %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.EventsReceived.WithLabelValues("POST_USER_API_CALL", otherOption)); got != 3 {
		t.Errorf("received POST_USER_API_CALL other = %v, want 3", got)
	}
	if _, ok := w.parsed.Get(known); !ok {
		t.Errorf("%q not remembered", known)
	}
	if _, ok := w.parsed.Get(open); ok {
		t.Errorf("%q, an option outside the catalogue, remembered", open)
	}
}
