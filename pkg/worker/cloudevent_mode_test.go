package worker

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestCloudEventMode(t *testing.T) {
	tests := []struct {
		name string
		give nats.Header
		want ceMode
	}{
		{"none", nil, notCloudEvent},
		{"plain SDK", nats.Header{"Nats-Msg-Id": {"a"}, "Trigger-Deadline": {"1"}, "Trigger-Origin": {"x"}}, notCloudEvent},
		{"json content type", nats.Header{"Content-Type": {"application/json"}}, notCloudEvent},
		{"binary", nats.Header{"ce-specversion": {"1.0"}}, ceBinary},
		{"binary other case", nats.Header{"CE-SpecVersion": {"1.0"}}, ceBinary},
		{"structured", nats.Header{"content-type": {"Application/CloudEvents+JSON; charset=utf-8"}}, ceStructured},
		{"structured wins", nats.Header{"ce-specversion": {"1.0"}, "Content-Type": {"application/cloudevents+json"}}, ceStructured},
		{"batch is structured (refused later)", nats.Header{"Content-Type": {"application/cloudevents-batch+json"}}, ceStructured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloudEventMode(tt.give); got != tt.want {
				t.Errorf("cloudEventMode(%v) = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}

// BenchmarkCloudEventMode is what the plain event pays: the look at the
// header names of what the SDK sends on a PRE request.
func BenchmarkCloudEventMode(b *testing.B) {
	h := nats.Header{"Nats-Msg-Id": {"01JDQ7Z6W3S6K4V0Q5H3YB3M8C"}, "Trigger-Deadline": {"1764420000000"}}
	b.ReportAllocs()
	for b.Loop() {
		if cloudEventMode(h) != notCloudEvent {
			b.Fatal("a CloudEvent")
		}
	}
}
