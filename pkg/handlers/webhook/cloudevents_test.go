package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
)

// ceReceived is what the CloudEvents receiver got: the event, the request's
// headers and the signature check's error.
type ceReceived struct {
	ev     cloudevents.Event
	header http.Header
	sigErr error
}

// ceReceiver starts a CloudEvents SDK HTTP receiver on a loopback listener;
// each event it gets goes on the channel, and reply (nil: none) is its
// answer. It is stopped, and waited for, when t ends.
func ceReceiver(t *testing.T, secret string, reply func(cloudevents.Event) *cloudevents.Event) (string, <-chan ceReceived) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClientHTTP(cloudevents.WithListener(ln), cehttp.WithRequestDataAtContextMiddleware())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan ceReceived, 1) // one event per test; the receiver never blocks on it
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = c.StartReceiver(ctx, func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
			r := ceReceived{ev: e, sigErr: errors.New("no request data")}
			if rd := cehttp.RequestDataFromContext(ctx); rd != nil {
				r.header = rd.Header.Clone()
				r.sigErr = whVerify(secret, rd.Header, e.Data(), time.Now())
			}
			select {
			case got <- r:
			default:
			}
			if reply == nil {
				return nil, cloudevents.ResultACK
			}
			return reply(e), cloudevents.ResultACK
		})
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/", got
}

// ceCall is the context of a call of function quota by worker node-1.
func ceCall(t *testing.T) context.Context {
	return handlers.WithCall(t.Context(), handlers.Call{Ref: "quota", Worker: "node-1-5f3a9c2e"})
}

// TestWebhookCloudEvents: a webhook in format cloudevents is received by a
// CloudEvents SDK receiver as a binary-mode CloudEvent with the event's id,
// type and time, the worker and function as source, the event as data,
// signed as a JSON webhook is; the receiver's CloudEvent reply is the
// result.
func TestWebhookCloudEvents(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	url, got := ceReceiver(t, secret, func(cloudevents.Event) *cloudevents.Event {
		r := cloudevents.NewEvent()
		r.SetID("reply-1")
		r.SetSource("/quota-service")
		r.SetType("com.example.quota.decided")
		if err := r.SetData(cloudevents.ApplicationJSON, map[string]string{
			"exitState": "FAILED", "errorCode": "QUOTA_EXCEEDED", "errorMessage": "at most 16 CPUs",
		}); err != nil {
			panic(err)
		}
		return &r
	})
	w := whNew(t, webhook.Config{URL: url, Secret: secret, Format: webhook.FormatCloudEvents, Prefix: "acme.trigger"})
	ev := whEvent()
	res, err := w.Handle(ceCall(t), ev)
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	want := handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "at most 16 CPUs"}
	if res.ExitState != want.ExitState || res.ErrorCode != want.ErrorCode || res.ErrorMessage != want.ErrorMessage {
		t.Errorf("Handle() = %+v, want the reply's %+v", res, want)
	}

	var r ceReceived
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no event")
	}
	e := r.ev
	if e.SpecVersion() != "1.0" || e.ID() != ev.ID || e.Type() != "acme.trigger.PRE_CREATE.SERVER" ||
		e.Source() != "/triggerbus/node-1-5f3a9c2e/quota" || e.DataContentType() != "application/json" ||
		!e.Time().Equal(time.UnixMilli(ev.TimeStamp)) {
		t.Errorf("received %s", e)
	}
	if r.header.Get("Ce-Id") != ev.ID || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("not binary mode: headers %v", r.header)
	}
	body, _ := ev.Encode()
	if string(e.Data()) != string(body) {
		t.Errorf("data = %s, want the event %s", e.Data(), body)
	}
	if r.sigErr != nil {
		t.Errorf("signature: %v (headers %v)", r.sigErr, r.header)
	}
	if r.header.Get("Webhook-Id") != ev.ID {
		t.Errorf("Webhook-Id = %q, want the event id", r.header.Get("Webhook-Id"))
	}
}

// TestWebhookCloudEventsNoReply: a receiver that answers no event (202, no
// body) gives CONTINUE; without a Call the source is /triggerbus.
func TestWebhookCloudEventsNoReply(t *testing.T) {
	url, got := ceReceiver(t, "", nil)
	w := whNew(t, webhook.Config{URL: url, Format: webhook.FormatCloudEvents})
	res, err := w.Handle(t.Context(), whEvent())
	if err != nil || res.ExitState != handlers.Continue {
		t.Fatalf("Handle() = %+v, %v, want CONTINUE", res, err)
	}
	r := <-got
	if r.ev.Source() != "/triggerbus" || r.ev.Type() != "trigger.PRE_CREATE.SERVER" {
		t.Errorf("source %q type %q", r.ev.Source(), r.ev.Type())
	}
	if r.header == nil || r.header.Get("Webhook-Signature") != "" {
		t.Errorf("signed without a secret, or no headers: %v", r.header)
	}
}

// TestWebhookCloudEventReplies: a reply that is a CloudEvent is read as one
// whatever the request's format; one that is not a valid CloudEvent, or
// whose data is not JSON, is a bad result.
func TestWebhookCloudEventReplies(t *testing.T) {
	reply := func(h map[string]string, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range h {
				w.Header().Set(k, v)
			}
			_, _ = w.Write([]byte(body))
		}
	}
	binary := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "r1", "Ce-Source": "/svc", "Ce-Type": "t", "Content-Type": "application/json"}
	tests := []struct {
		name string
		h    http.HandlerFunc
		want handlers.ExitState
	}{
		{"binary", reply(binary, `{"exitState":"SUCCESS"}`), handlers.Success},
		{"binary no data", reply(binary, ``), handlers.Continue},
		{"structured", reply(map[string]string{"Content-Type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"r1","source":"/svc","type":"t","data":{"exitState":"FAILED","errorCode":"NO"}}`), handlers.Failed},
	}
	for _, format := range []string{"", webhook.FormatCloudEvents} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				w := whNew(t, webhook.Config{URL: whServe(t, tt.h).URL, Format: format})
				res, err := w.Handle(ceCall(t), whEvent())
				if err != nil || res.ExitState != tt.want {
					t.Errorf("Handle() = %+v, %v, want %v", res, err, tt.want)
				}
			})
		}
	}
	bad := []struct {
		name, want string
		h          http.HandlerFunc
	}{
		{"binary without id", "not a valid CloudEvent", reply(map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/svc", "Ce-Type": "t"}, `{}`)},
		{"data not JSON", "not JSON", reply(map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "r1", "Ce-Source": "/svc", "Ce-Type": "t", "Content-Type": "text/plain"}, `ok`)},
		{"batch", "binary or structured", reply(map[string]string{"Content-Type": "application/cloudevents-batch+json"}, `[]`)},
		{"structured not JSON", "not a valid CloudEvent", reply(map[string]string{"Content-Type": "application/cloudevents+json"}, `{`)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: whServe(t, tt.h).URL, Format: webhook.FormatCloudEvents})
			res, err := w.Handle(ceCall(t), whEvent())
			if !errors.Is(err, handlers.ErrBadResult) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle() = %+v, %v, want ErrBadResult saying %q", res, err, tt.want)
			}
		})
	}
}

func TestWebhookFormatConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		give webhook.Config
	}{
		{"unknown format", webhook.Config{URL: "https://example.com", Format: "xml"}},
		{"ce header", webhook.Config{URL: "https://example.com", Format: webhook.FormatCloudEvents, Headers: map[string]string{"ce-source": "x"}}},
		{"bad prefix", webhook.Config{URL: "https://example.com", Format: webhook.FormatCloudEvents, Prefix: "a..b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.New(tt.give); !errors.Is(err, handlers.ErrInvalidConfig) {
				t.Errorf("New(%v) error = %v, want ErrInvalidConfig", tt.give, err)
			}
		})
	}
	// A ce-* header is a header like any other in the JSON format.
	whNew(t, webhook.Config{URL: "https://example.com", Headers: map[string]string{"ce-source": "x"}})
}
