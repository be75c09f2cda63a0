package lua_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/datastore"
	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/internal/mailer/mailertest"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// fidelityStore returns a data store on a JetStream server of its own, and
// the bucket it writes.
func fidelityStore(t *testing.T, maxBytes int) (*datastore.Store, func() jetstream.KeyValue) {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := datastore.New(datastore.Config{Bucket: "TRIGGER_DATASTORE", MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	st.Bind(js)
	return st, func() jetstream.KeyValue {
		kv, err := js.KeyValue(t.Context(), "TRIGGER_DATASTORE")
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
}

// fidelityMessage calls h and returns the errorMessage of its SUCCESS.
func fidelityMessage(t *testing.T, h *lua.Handler, input string) string {
	t.Helper()
	return fidelitySucceeds(t, luaCtx(t, nil, nil), h, luaEvent(input)).ErrorMessage
}

func TestFDLDataStore(t *testing.T) {
	st, bucket := fidelityStore(t, 0)
	opts := lua.Options{DataStore: st}
	runs := fidelityHandler(t, "datastore.lua", "count_runs", opts)
	other := fidelityHandler(t, "datastore.lua", "count_other", opts)

	for i, want := range []string{"1 none", "2 s-1", "3 s-2"} {
		input := `{"resourceUUID":"s-` + string(rune('1'+i)) + `"}`
		if got := fidelityMessage(t, runs, input); got != want {
			t.Fatalf("count_runs run %d = %q, want %q", i+1, got, want)
		}
	}
	if got := fidelityMessage(t, other, `{}`); got != "1" {
		t.Errorf("count_other = %q, want 1: its map is its own", got)
	}
	e, err := bucket().Get(t.Context(), "count_runs")
	if err != nil {
		t.Fatal(err)
	}
	fdlSameJSON(t, "stored map", string(e.Value()), `{"runs":3,"last":"s-3","seen":["s-1","s-2","s-3"]}`)

	// A new handler (another worker, a restart) reads the same map.
	again := fidelityHandler(t, "datastore.lua", "count_runs", opts)
	if got := fidelityMessage(t, again, `{"resourceUUID":"s-9"}`); got != "4 s-3" {
		t.Errorf("count_runs from a new handler = %q, want 4 s-3", got)
	}
	if got := fidelityMessage(t, runs, `{"reset":true}`); got != "reset" {
		t.Fatalf("count_runs(reset) = %q", got)
	}
	if _, err := bucket().Get(t.Context(), "count_runs"); err == nil {
		t.Error("the map is still stored after resetPrivateDataMap()")
	}
	if got := fidelityMessage(t, runs, `{"resourceUUID":"s-1"}`); got != "1 none" {
		t.Errorf("count_runs after the reset = %q, want 1 none", got)
	}
}

func TestFDLDataStoreLimits(t *testing.T) {
	st, _ := fidelityStore(t, 0)
	h := fidelityHandler(t, "datastore.lua", "store_too_much", lua.Options{DataStore: st})
	got := fidelityMessage(t, h, `{}`)
	for _, want := range []string{"dataStore.resetPrivateDataMap: datastore: private data map too large", "the limit is 65536",
		"want a Map"} {
		if !strings.Contains(got, want) {
			t.Errorf("store_too_much = %q, want it to say %q", got, want)
		}
	}
}

// TestFDLDataStoreUnavailable: without a data store, or with one whose
// worker has no JetStream, dataStore calls fail the call and say why.
func TestFDLDataStoreUnavailable(t *testing.T) {
	unbound, err := datastore.New(datastore.Config{Bucket: "TRIGGER_DATASTORE"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts lua.Options
		want string
	}{
		{"no data store", lua.Options{}, "dataStore.getPrivateDataMap: no data store: the worker has no JetStream"},
		{"no JetStream", lua.Options{DataStore: unbound}, "dataStore.getPrivateDataMap: datastore: the worker has no JetStream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := fidelityHandler(t, "datastore.lua", "count_runs", tt.opts)
			_, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceUUID":"s-1"}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("count_runs error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFDLEmailHelper(t *testing.T) {
	srv := mailertest.Run(t, mailertest.WithAuth("bot", "s3cret"))
	m, err := mailer.New(mailer.Config{Host: srv.Host, Port: srv.Port, CA: srv.CA, Username: "bot", Password: "s3cret",
		From: "triggers@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	h := fidelityHandler(t, "email.lua", "email_alert", lua.Options{Mail: m})
	got := fidelityMessage(t, h, `{"resourceUUID":"s-1","resourceName":"web-1"}`)
	if !strings.Contains(got, "FDLEmailHelper.sendEmail: bad message: no recipient") {
		t.Errorf("email_alert = %q, want the error of the message without recipient", got)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("relay got %d messages, want 2", len(msgs))
	}
	for i, want := range []struct {
		to      string
		headers []string
	}{
		{"ops@example.com cc1@example.com cc2@example.com", []string{"Subject: SERVER SHUTDOWN ALERT", "Reply-To: <be@example.com>",
			"Cc: <cc1@example.com>, <cc2@example.com>"}},
		{"owner@example.com audit@example.com", []string{"Subject: Signup-Login Alert", "Reply-To: <reply@example.com>"}},
	} {
		msg := msgs[i]
		if strings.Join(msg.To, " ") != want.to || msg.From != "triggers@example.com" || msg.User != "bot" || !msg.TLS {
			t.Errorf("message %d = %+v, want to %s from triggers@example.com", i+1, msg, want.to)
		}
		for _, hdr := range append(want.headers, "From: <triggers@example.com>", "SERVER web-1 has stopped") {
			if !strings.Contains(msg.Data, hdr) {
				t.Errorf("message %d has no %q:\n%s", i+1, hdr, msg.Data)
			}
		}
	}
}

func TestFDLEmailHelperUnconfigured(t *testing.T) {
	h := fidelityHandler(t, "email.lua", "email_alert", lua.Options{})
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceUUID":"s-1","resourceName":"web-1"}`))
	if err == nil || !strings.Contains(err.Error(), "FDLEmailHelper: no SMTP relay is configured") || res.ExitState == handlers.Success {
		t.Fatalf("email_alert = %+v, %v; want the error that no SMTP relay is configured", res, err)
	}
}

func TestFDLTranslate(t *testing.T) {
	const input = `{"resourceName":"web-1"}`
	h := fidelityHandler(t, "translate.lua", "translated", lua.Options{Messages: map[string]string{
		"backup.started": "Backup started",
		"backup.done":    "Backup of {0} done in {1} minutes",
	}})
	if got, want := fidelityMessage(t, h, input), "Backup started|Backup of web-1 done in 3 minutes|not.in.catalogue|Backup of {0} done in {1} minutes"; got != want {
		t.Errorf("translated = %q, want %q", got, want)
	}
	bare := fidelityHandler(t, "translate.lua", "translated", lua.Options{})
	if got, want := fidelityMessage(t, bare, input), "backup.started|backup.done|not.in.catalogue|backup.done"; got != want {
		t.Errorf("translated without a catalogue = %q, want %q", got, want)
	}
}
