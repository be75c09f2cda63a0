package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/handlerstest"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
)

// whServe starts a server for h, closed when t ends.
func whServe(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// whHangServer starts a server whose handler answers only when the client
// goes away (or t ends).
func whHangServer(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := whServe(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	// Registered after the server's Close, so it runs before it: Close
	// waits for the handlers.
	t.Cleanup(func() { close(stop) })
	return srv
}

// whReply returns a handler that answers with status and body.
func whReply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// whNew returns a webhook for cfg, closed when t ends.
func whNew(t *testing.T, cfg webhook.Config) *webhook.Handler {
	t.Helper()
	w, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New(%v) error = %v", cfg, err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func whEvent() *event.Event {
	return &event.Event{
		ID:            event.NewID(),
		TriggerType:   "PRE_CREATE",
		TriggerOption: "SERVER",
		TimeStamp:     1764420000000,
		Customer:      json.RawMessage(`{"resourceUUID":"c-1"}`),
		Input:         json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192}`),
	}
}

// whRequest is what a test server saw of a request.
type whRequest struct {
	method string
	header http.Header
	body   []byte
}

// whRecorder returns a handler that sends each request it gets on the
// returned channel and answers 204.
func whRecorder() (http.HandlerFunc, <-chan whRequest) {
	got := make(chan whRequest, 1) // one request per test; the handler never blocks on it
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case got <- whRequest{method: r.Method, header: r.Header.Clone(), body: body}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}, got
}

func whRecv(t *testing.T, got <-chan whRequest) whRequest {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the server got no request")
		return whRequest{}
	}
}

func TestWebhookResult(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   handlers.Result
	}{
		{name: "success", status: 200, body: `{"exitState":"SUCCESS"}`, want: handlers.Result{ExitState: handlers.Success}},
		{
			name:   "failed",
			status: 200,
			body:   `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`,
			want:   handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"},
		},
		{name: "empty 200", status: 200, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "204", status: 204, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "empty 202", status: 202, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "blank body", status: 200, body: " \n", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "null body", status: 200, body: "null", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "201 with result", status: 201, body: `{"exitState":"continue"}`, want: handlers.Result{ExitState: handlers.Continue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: whServe(t, whReply(tt.status, tt.body)).URL})
			got, err := w.Handle(t.Context(), whEvent())
			if err != nil {
				t.Fatalf("Handle() error = %v, want nil", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWebhookResultErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "not JSON", body: "OK"},
		{name: "unknown state", body: `{"exitState":"MAYBE"}`},
		{name: "array", body: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: whServe(t, whReply(200, tt.body)).URL})
			got, err := w.Handle(t.Context(), whEvent())
			if !errors.Is(err, handlers.ErrBadResult) {
				t.Errorf("Handle() = %+v, %v, want an error wrapping ErrBadResult", got, err)
			}
		})
	}
}

func TestWebhookModifiedInput(t *testing.T) {
	srv := whServe(t, func(w http.ResponseWriter, r *http.Request) {
		var ev event.Event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		input, err := handlerstest.ModifyInput(ev.Input)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(handlers.Result{ExitState: handlers.Success, Input: input})
	})
	w := whNew(t, webhook.Config{URL: srv.URL})
	ev := whEvent()
	ev.Input = json.RawMessage(`{"cpu":4,"meta":{"x":null,"y":1.5},"big":12345678901234567890,"tags":["a"]}`)
	got, err := w.Handle(t.Context(), ev)
	if err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	want := `{"big":12345678901234567890,"cpu":8,"meta":{"x":null,"y":1.5},"tagged":true,"tags":["a"]}`
	if got.State() != handlers.Success || string(got.Input) != want {
		t.Errorf("Handle() = %s %s, want SUCCESS %s", got.State(), got.Input, want)
	}
}

func TestWebhookRequest(t *testing.T) {
	h, got := whRecorder()
	srv := whServe(t, h)
	w := whNew(t, webhook.Config{
		URL:     srv.URL + "/hooks/trigger",
		Headers: map[string]string{"X-Api-Key": "k1", "Accept": "application/vnd.test+json"},
	})
	ev := whEvent()
	ctx := handlers.WithCall(t.Context(), handlers.Call{Ref: "deny_big", Origin: "deny_big/" + ev.ID})
	if _, err := w.Handle(ctx, ev); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	r := whRecv(t, got)
	wantBody, _ := ev.Encode()
	if r.method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.method)
	}
	if !bytes.Equal(r.body, wantBody) {
		t.Errorf("body = %s, want the event JSON %s", r.body, wantBody)
	}
	for name, want := range map[string]string{
		"Content-Type":   "application/json",
		"User-Agent":     "triggerbus",
		"Trigger-Origin": "deny_big/" + ev.ID,
		"X-Api-Key":      "k1",
		"Accept":         "application/vnd.test+json",
	} {
		if v := r.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	for _, name := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		if v, ok := r.header[name]; ok {
			t.Errorf("unsigned webhook sent %s: %q", name, v)
		}
	}

	t.Run("origin from the event package", func(t *testing.T) {
		ctx := event.WithOrigin(t.Context(), "f/01ORIGIN")
		if _, err := w.Handle(ctx, whEvent()); err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
		if v := whRecv(t, got).header.Get("Trigger-Origin"); v != "f/01ORIGIN" {
			t.Errorf("Trigger-Origin = %q, want f/01ORIGIN", v)
		}
	})
	t.Run("no origin", func(t *testing.T) {
		if _, err := w.Handle(t.Context(), whEvent()); err != nil {
			t.Fatalf("Handle() error = %v", err)
		}
		if v, ok := whRecv(t, got).header["Trigger-Origin"]; ok {
			t.Errorf("Trigger-Origin = %q, want none outside a trigger function's call", v)
		}
	})
}

// whVerify checks a Standard Webhooks request as a receiver would, written
// from the specification: the signed content is id "." timestamp "." body,
// the key is the base64 after "whsec_", the header holds space-separated
// "v1,<base64 HMAC-SHA256>" signatures and the timestamp must be recent.
func whVerify(secret string, header http.Header, body []byte, now time.Time) error {
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is too far from now", ts)
	}
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return err
		}
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func TestWebhookVerifierVector(t *testing.T) {
	// The example of the Standard Webhooks specification, to show that the
	// verifier the signature test trusts is right.
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	if err := whVerify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, time.Unix(1614265330, 0)); err != nil {
		t.Errorf("whVerify(spec example) = %v, want nil", err)
	}
	if err := whVerify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", h, body, time.Unix(1614265330, 0)); err == nil {
		t.Error("whVerify(spec example, other secret) = nil, want an error")
	}
}

func TestWebhookSignature(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		wrong  string
	}{
		{
			name:   "whsec",
			secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
			wrong:  "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdeX")),
		},
		{name: "raw", secret: "a raw shared secret", wrong: "another raw secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := whRecorder()
			w := whNew(t, webhook.Config{URL: whServe(t, h).URL, Secret: tt.secret})
			ev := whEvent()
			if _, err := w.Handle(t.Context(), ev); err != nil {
				t.Fatalf("Handle() error = %v", err)
			}
			r := whRecv(t, got)
			if err := whVerify(tt.secret, r.header, r.body, time.Now()); err != nil {
				t.Errorf("verify with the secret: %v (headers %v)", err, r.header)
			}
			if err := whVerify(tt.wrong, r.header, r.body, time.Now()); err == nil {
				t.Error("verify with a wrong secret = nil, want an error")
			}
			tampered := bytes.Replace(r.body, []byte(`"cpu":4`), []byte(`"cpu":5`), 1)
			if err := whVerify(tt.secret, r.header, tampered, time.Now()); err == nil {
				t.Error("verify of a changed body = nil, want an error")
			}
			if id := r.header.Get("webhook-id"); id != ev.ID {
				t.Errorf("webhook-id = %q, want the event id %q", id, ev.ID)
			}
		})
	}
}

func TestWebhookHTTPError(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name     string
		status   int
		body     string
		wantBody string
	}{
		{name: "500", status: 500, body: "database down", wantBody: "database down"},
		{name: "404 empty", status: 404},
		{name: "long body", status: 503, body: long, wantBody: long[:512]},
		{name: "300", status: 300, body: "choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: whServe(t, whReply(tt.status, tt.body)).URL})
			res, err := w.Handle(t.Context(), whEvent())
			var he *webhook.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("Handle() = %+v, %v, want an *HTTPError", res, err)
			}
			if he.StatusCode != tt.status || (tt.wantBody != "" && he.Body != tt.wantBody) {
				t.Errorf("HTTPError = {%d %q}, want {%d %q}", he.StatusCode, he.Body, tt.status, tt.wantBody)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("Error() = %q, want the status in it", err)
			}
			if !reflect.DeepEqual(res, handlers.Result{}) {
				t.Errorf("Handle() = %+v, want the zero Result", res)
			}
		})
	}
}

func TestWebhookRedirect(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var hits atomic.Int32
			target := whServe(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = io.WriteString(w, `{"exitState":"SUCCESS"}`)
			})
			srv := whServe(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL, status)
			})
			w := whNew(t, webhook.Config{URL: srv.URL})
			_, err := w.Handle(t.Context(), whEvent())
			var he *webhook.HTTPError
			if !errors.As(err, &he) || he.StatusCode != status {
				t.Errorf("Handle() error = %v, want an *HTTPError with status %d", err, status)
			}
			if err != nil && !strings.Contains(err.Error(), "redirects are not followed") {
				t.Errorf("Error() = %q, want it to say redirects are not followed", err)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests, want 0", n)
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	bodyStop := make(chan struct{})
	slowBody := whServe(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"exitState":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-bodyStop:
		}
	})
	t.Cleanup(func() { close(bodyStop) })
	hang := whHangServer(t)

	tests := []struct {
		name string
		url  string
		cfg  time.Duration // Config.Timeout
		ctx  time.Duration // deadline of the call's context; 0 = none
	}{
		{name: "config timeout, no answer", url: hang.URL, cfg: timeout},
		{name: "config timeout, slow body", url: slowBody.URL, cfg: timeout},
		{name: "caller deadline", url: hang.URL, ctx: timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: tt.url, Timeout: tt.cfg})
			ctx := t.Context()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			// The servers never finish answering: Handle returns because
			// of the deadline, or not at all (a minute is the bound on that
			// wait, not a speed claim).
			type out struct {
				res handlers.Result
				err error
			}
			done := make(chan out, 1)
			start := time.Now()
			go func() {
				res, err := w.Handle(ctx, whEvent())
				done <- out{res, err}
			}()
			var o out
			select {
			case o = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("Handle() did not return within a minute of a %v deadline", timeout)
			}
			res, err, elapsed := o.res, o.err, time.Since(start)
			if !errors.Is(err, handlers.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Handle() error = %v, want it to wrap ErrTimeout and context.DeadlineExceeded", err)
			}
			if !reflect.DeepEqual(res, handlers.Result{}) {
				t.Errorf("Handle() = %+v, want the zero Result", res)
			}
			if elapsed < timeout {
				t.Errorf("Handle() returned after %v, before the %v deadline", elapsed, timeout)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		w := whNew(t, webhook.Config{URL: hang.URL})
		ctx, cancel := context.WithCancel(t.Context())
		stop := time.AfterFunc(50*time.Millisecond, cancel)
		defer stop.Stop()
		_, err := w.Handle(ctx, whEvent())
		if !errors.Is(err, context.Canceled) || errors.Is(err, handlers.ErrTimeout) {
			t.Errorf("Handle() error = %v, want context.Canceled and not ErrTimeout", err)
		}
	})
}

func TestWebhookBodyCap(t *testing.T) {
	const limit = 64
	fit := `{"exitState":"SUCCESS"}`
	fit += strings.Repeat(" ", limit-len(fit))
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{name: "at the cap", body: fit},
		{name: "over the cap", body: fit + " ", wantErr: true},
		{name: "far over the cap", body: strings.Repeat(" ", 1<<20) + "{}", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := whNew(t, webhook.Config{URL: whServe(t, whReply(200, tt.body)).URL, MaxBodyBytes: limit})
			res, err := w.Handle(t.Context(), whEvent())
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), "larger than 64 bytes")):
				t.Errorf("Handle() = %+v, %v, want an error saying the body is larger than 64 bytes", res, err)
			case !tt.wantErr && (err != nil || res.State() != handlers.Success):
				t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
			}
		})
	}
}

func TestWebhookTLS(t *testing.T) {
	srv := httptest.NewTLSServer(whReply(200, `{"exitState":"SUCCESS"}`))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("with the CA", func(t *testing.T) {
		w := whNew(t, webhook.Config{URL: srv.URL, CA: ca})
		res, err := w.Handle(t.Context(), whEvent())
		if err != nil || res.State() != handlers.Success {
			t.Errorf("Handle() = %+v, %v, want SUCCESS", res, err)
		}
	})
	t.Run("without the CA", func(t *testing.T) {
		w := whNew(t, webhook.Config{URL: srv.URL})
		_, err := w.Handle(t.Context(), whEvent())
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Errorf("Handle() error = %v, want a certificate verification error", err)
		}
	})
	t.Run("http to a TLS server", func(t *testing.T) {
		w := whNew(t, webhook.Config{URL: "http://" + srv.Listener.Addr().String(), CA: ca})
		if _, err := w.Handle(t.Context(), whEvent()); err == nil {
			t.Error("Handle() error = nil, want an error")
		}
	})
}

func TestWebhookDenyPrivateNetworks(t *testing.T) {
	srv := whServe(t, whReply(200, `{"exitState":"SUCCESS"}`))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	byName := "http://localhost:" + port

	t.Run("refused at dial time", func(t *testing.T) {
		// A name is only checked once it is resolved.
		w := whNew(t, webhook.Config{URL: byName, DenyPrivateNetworks: true})
		res, err := w.Handle(t.Context(), whEvent())
		if !errors.Is(err, webhook.ErrPrivateNetwork) {
			t.Fatalf("Handle() = %+v, %v, want an error wrapping ErrPrivateNetwork", res, err)
		}
		if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Handle() error = %q, want it to say the address is loopback", err)
		}
	})
	t.Run("allowed when not denied", func(t *testing.T) {
		for _, u := range []string{srv.URL, byName} {
			w := whNew(t, webhook.Config{URL: u})
			if res, err := w.Handle(t.Context(), whEvent()); err != nil || res.State() != handlers.Success {
				t.Errorf("Handle(%s) = %+v, %v, want SUCCESS", u, res, err)
			}
		}
	})

	// An IP literal is refused at once.
	refused := []string{
		srv.URL, "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest",
		"http://0.0.0.0/", "http://100.64.0.1/", "http://224.0.0.1/", "http://255.255.255.255/",
		"http://[::1]/", "http://[::]/", "http://[fd00::1]/", "http://[fe80::1]/", "http://[ff02::1]/",
		"http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a00:1]/", "http://[2002:c0a8:101::1]/",
	}
	for _, u := range refused {
		t.Run("literal "+u, func(t *testing.T) {
			_, err := webhook.New(webhook.Config{URL: u, DenyPrivateNetworks: true})
			if !errors.Is(err, handlers.ErrInvalidConfig) || !errors.Is(err, webhook.ErrPrivateNetwork) {
				t.Errorf("New(%s) error = %v, want ErrInvalidConfig and ErrPrivateNetwork", u, err)
			}
		})
	}
	for _, u := range []string{"https://1.1.1.1/", "https://[2606:4700:4700::1111]/", "https://[64:ff9b::101:101]/", "https://example.com/"} {
		t.Run("public "+u, func(t *testing.T) {
			w, err := webhook.New(webhook.Config{URL: u, DenyPrivateNetworks: true})
			if err != nil {
				t.Fatalf("New(%s) error = %v, want nil", u, err)
			}
			_ = w.Close()
		})
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give webhook.Config
	}{
		{name: "no url", give: webhook.Config{}},
		{name: "bad url", give: webhook.Config{URL: "http://[::1"}},
		{name: "ftp", give: webhook.Config{URL: "ftp://example.com/"}},
		{name: "relative", give: webhook.Config{URL: "/hook"}},
		{name: "no host", give: webhook.Config{URL: "http:///hook"}},
		{name: "negative timeout", give: webhook.Config{URL: "https://example.com", Timeout: -time.Second}},
		{name: "negative body cap", give: webhook.Config{URL: "https://example.com", MaxBodyBytes: -1}},
		{name: "whsec not base64", give: webhook.Config{URL: "https://example.com", Secret: "whsec_***"}},
		{name: "whsec empty", give: webhook.Config{URL: "https://example.com", Secret: "whsec_"}},
		{name: "reserved header", give: webhook.Config{URL: "https://example.com", Headers: map[string]string{"content-type": "text/plain"}}},
		{name: "signature header", give: webhook.Config{URL: "https://example.com", Headers: map[string]string{"webhook-signature": "v1,x"}}},
		{name: "origin header", give: webhook.Config{URL: "https://example.com", Headers: map[string]string{"Trigger-Origin": "x"}}},
		{name: "bad header name", give: webhook.Config{URL: "https://example.com", Headers: map[string]string{"X Key": "v"}}},
		{name: "header value newline", give: webhook.Config{URL: "https://example.com", Headers: map[string]string{"X-Key": "v\r\nX-Evil: 1"}}},
		{name: "missing CA", give: webhook.Config{URL: "https://example.com", CA: filepath.Join(dir, "missing.pem")}},
		{name: "CA not PEM", give: webhook.Config{URL: "https://example.com", CA: notPEM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := webhook.New(tt.give)
			if !errors.Is(err, handlers.ErrInvalidConfig) {
				t.Errorf("New(%v) = %v, %v, want an error wrapping ErrInvalidConfig", tt.give, w, err)
			}
		})
	}
}

func TestWebhookSecretNotShown(t *testing.T) {
	key := "k3y-th4t-must-n0t-l34k-0123456789"
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(key))
	forbidden := []string{secret, strings.TrimPrefix(secret, "whsec_"), key, "header-s3cr3t", "query-s3cr3t", "p4ssw0rd"}

	srv := whServe(t, whReply(500, "failure"))
	hang := whHangServer(t)
	cfg := webhook.Config{
		URL:     strings.Replace(srv.URL, "http://", "http://user:p4ssw0rd@", 1) + "/hook?token=query-s3cr3t",
		Secret:  secret,
		Headers: map[string]string{"Authorization": "Bearer header-s3cr3t"},
		Timeout: 100 * time.Millisecond,
	}
	var out bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("webhook", "config", cfg)
		l.Info("webhook", "config", &cfg)
		l.Info("webhook", slog.Any("config", cfg))
	}
	w := whNew(t, cfg)
	fmt.Fprintf(&out, "%v %+v %#v %s %v %+v %#v\n", cfg, cfg, cfg, cfg, w, w, w)

	var errs []error
	_, err := w.Handle(t.Context(), whEvent())
	errs = append(errs, err)
	slow := cfg
	slow.URL = hang.URL + "?token=query-s3cr3t"
	_, err = whNew(t, slow).Handle(t.Context(), whEvent())
	errs = append(errs, err)
	denied := cfg
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	denied.URL = "http://user:p4ssw0rd@localhost:" + port + "/?token=query-s3cr3t"
	denied.DenyPrivateNetworks = true
	_, err = whNew(t, denied).Handle(t.Context(), whEvent())
	errs = append(errs, err)
	for _, bad := range []webhook.Config{
		{URL: cfg.URL, Secret: "whsec_" + key}, // not base64
		{URL: "ftp://user:p4ssw0rd@example.com/?token=query-s3cr3t", Secret: secret},
		{URL: "http://user:p4ssw0rd@[::1/?token=query-s3cr3t", Secret: secret},
	} {
		_, err := webhook.New(bad)
		errs = append(errs, err)
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("a call that should fail did not")
		}
		fmt.Fprintln(&out, err)
	}

	for _, s := range forbidden {
		if strings.Contains(out.String(), s) {
			t.Errorf("%q is shown in:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "REDACTED") {
		t.Errorf("the logs do not say REDACTED:\n%s", out.String())
	}
}

func TestWebhookClose(t *testing.T) {
	w := whNew(t, webhook.Config{URL: whServe(t, whReply(204, "")).URL})
	if _, err := w.Handle(t.Context(), whEvent()); err != nil {
		t.Fatalf("Handle() error = %v", err)
	}
	for range 2 {
		if err := w.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	}
	if _, err := w.Handle(t.Context(), whEvent()); err == nil {
		t.Error("Handle() after Close error = nil, want an error")
	}
}

func TestWebhookConformance(t *testing.T) {
	kind := func(h http.HandlerFunc) func(t *testing.T) handlers.Handler {
		return func(t *testing.T) handlers.Handler {
			return whNew(t, webhook.Config{URL: whServe(t, h).URL})
		}
	}
	handlerstest.Run(t, handlerstest.Kind{
		Name:     "webhook",
		Continue: kind(whReply(http.StatusNoContent, "")),
		Fail:     kind(whReply(200, `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`)),
		Modify: kind(func(w http.ResponseWriter, r *http.Request) {
			var ev event.Event
			if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			input, err := handlerstest.ModifyInput(ev.Input)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(handlers.Result{ExitState: handlers.Success, Input: input})
		}),
		Hang: func(t *testing.T) handlers.Handler {
			return whNew(t, webhook.Config{URL: whHangServer(t).URL})
		},
		Error: kind(whReply(http.StatusInternalServerError, `{"error":"internal"}`)),
		Returns: func(t *testing.T, doc string) handlers.Handler {
			return kind(whReply(http.StatusOK, doc))(t)
		},
	})
}
