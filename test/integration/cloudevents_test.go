package integration

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestCloudEventsEndToEnd: a service publishes a CloudEvent with the SDK's
// CloudEvents option; the worker hands it to a webhook function in format
// cloudevents, served by a CloudEvents SDK receiver, which answers a
// CloudEvent refusing the server; the decision is that refusal. The
// receiver sees the event's id and subject as id and type, the worker and
// function as source, and the event as data.
func TestCloudEventsEndToEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := cloudevents.NewClientHTTP(cloudevents.WithListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan cloudevents.Event, 1) // one call in this test; the receiver never blocks on it
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = receiver.StartReceiver(ctx, func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
			select {
			case got <- e:
			default:
			}
			r := cloudevents.NewEvent()
			r.SetID("r-" + e.ID())
			r.SetSource("/quota")
			r.SetType("com.example.quota.decided")
			_ = r.SetData(cloudevents.ApplicationJSON, map[string]string{"exitState": "FAILED", "errorCode": "QUOTA_EXCEEDED"})
			return &r, cloudevents.ResultACK
		})
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	wh, err := webhook.New(webhook.Config{URL: "http://" + ln.Addr().String() + "/", Format: webhook.FormatCloudEvents})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wh.Close() })
	s := natstest.RunServer(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{Instance: "node-1"},
		worker.Function{Ref: "quota", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: wh})
	c := newClient(t, s, client.Options{NoRegistryWatch: true, CloudEvents: true})

	d := decide(t, context.Background(), c, "PRE_CREATE", "SERVER", &event.Event{ID: "ev-42", Input: json.RawMessage(`{"cpu":64}`)})
	if d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Function != "quota" || d.ID != "ev-42" {
		t.Errorf("decision = %+v, want QUOTA_EXCEEDED by quota for ev-42", d)
	}
	e := natstest.ChanRecv(t, got, waitShort)
	if e.ID() != "ev-42" || e.Type() != "trigger.PRE_CREATE.SERVER" || e.Source() != "/triggerbus/node-1/quota" {
		t.Errorf("receiver saw id %q type %q source %q", e.ID(), e.Type(), e.Source())
	}
	var data event.Event
	if err := json.Unmarshal(e.Data(), &data); err != nil || string(data.Input) != `{"cpu":64}` || data.ID != "ev-42" {
		t.Errorf("data = %s (%v), want the event", e.Data(), err)
	}
}
