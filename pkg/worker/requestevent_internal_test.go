package worker

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestRequestEvent checks what the decision log reads off a request's
// body: the deadline always, the id only when asked, a structured
// CloudEvent's deadline from its data.
func TestRequestEvent(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		structured bool
		withID     bool
		id         string
		deadline   int64
	}{
		{name: "event", body: `{"id":"e1","deadline":1765000000000,"input":{}}`, withID: true, id: "e1", deadline: 1765000000000},
		{name: "event, id not asked", body: `{"id":"e1","deadline":1765000000000,"input":{}}`, deadline: 1765000000000},
		{name: "no deadline", body: `{"id":"e1","input":{}}`, withID: true, id: "e1"},
		{name: "deadline not an integer", body: `{"id":"e1","deadline":"soon"}`, withID: true, id: "e1"},
		{name: "deadline not an integer, id not asked", body: `{"deadline":1.5,"id":"e1"}`},
		{name: "id not a string", body: `{"id":7,"deadline":1765000000000}`, withID: true, deadline: 1765000000000},
		{name: "not an object", body: `[1,2]`, withID: true},
		{name: "not JSON", body: `{"id":"e1",`, withID: true},
		{name: "structured", body: `{"specversion":"1.0","id":"c1","deadline":5,"data":{"deadline":1765000000000}}`, structured: true, withID: true, id: "c1", deadline: 1765000000000},
		{name: "structured, id not asked", body: `{"specversion":"1.0","id":"c1","data":{"deadline":1765000000000}}`, structured: true, deadline: 1765000000000},
		{name: "structured, no data", body: `{"specversion":"1.0","id":"c1","deadline":5}`, structured: true, withID: true, id: "c1"},
		{name: "structured, data not an object", body: `{"specversion":"1.0","id":"c1","data":"x"}`, structured: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := nats.NewMsg("trigger.PRE_CREATE.SERVER")
			m.Data = []byte(tt.body)
			if tt.structured {
				m.Header.Set(subjects.HeaderContentType, "application/cloudevents+json")
			}
			id, deadline := requestEvent(m, tt.withID)
			if id != tt.id || deadline != tt.deadline {
				t.Errorf("requestEvent(%s, %v) = %q, %d; want %q, %d", tt.body, tt.withID, id, deadline, tt.id, tt.deadline)
			}
		})
	}
}

// TestRequestEventAllocs checks that reading the deadline alone, what the
// decision log does for every decision made after the event was decoded,
// allocates nothing of its own beyond encoding/json's.
func TestRequestEventAllocs(t *testing.T) {
	m := nats.NewMsg("trigger.PRE_CREATE.SERVER")
	m.Data = []byte(`{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"PRE_CREATE","triggerOption":"SERVER","timeStamp":1765000000000,"deadline":1765000005000,"input":{"cpu":4}}`)
	without := testing.AllocsPerRun(100, func() { requestEvent(m, false) })
	with := testing.AllocsPerRun(100, func() { requestEvent(m, true) })
	t.Logf("allocations: %v for the deadline, %v with the id", without, with)
	if without >= with {
		t.Errorf("requestEvent allocates %v without the id, %v with it: reading the id should cost more", without, with)
	}
}
