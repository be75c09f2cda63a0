package datastore_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/datastore"
	"github.com/triggerbus/triggerbus/internal/natstest"
)

// boundStore returns a Store bound to a JetStream server of its own.
func boundStore(t *testing.T, maxBytes int) (*datastore.Store, jetstream.JetStream) {
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
	return st, js
}

func TestStoreRoundTrip(t *testing.T) {
	st, js := boundStore(t, 0)
	ctx := t.Context()
	if got, err := st.Get(ctx, "backup_on_job"); err != nil || got != nil {
		t.Fatalf("Get(new) = %q, %v; want nil, nil", got, err)
	}
	if err := st.Put(ctx, "backup_on_job", []byte(`{"last":"s-1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "other fn/é", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, "backup_on_job"); err != nil || string(got) != `{"last":"s-1"}` {
		t.Fatalf("Get() = %q, %v", got, err)
	}
	if got, err := st.Get(ctx, "other fn/é"); err != nil || string(got) != `{"n":1}` {
		t.Fatalf("Get(other) = %q, %v", got, err)
	}
	// Last writer wins.
	if err := st.Put(ctx, "backup_on_job", []byte(`{"last":"s-2"}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(ctx, "backup_on_job"); string(got) != `{"last":"s-2"}` {
		t.Fatalf("Get() after a second Put = %q", got)
	}
	if err := st.Delete(ctx, "backup_on_job"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "never_written"); err != nil {
		t.Fatalf("Delete(never written) = %v", err)
	}
	if got, err := st.Get(ctx, "backup_on_job"); err != nil || got != nil {
		t.Fatalf("Get(deleted) = %q, %v; want nil, nil", got, err)
	}
	if got, _ := st.Get(ctx, "other fn/é"); string(got) != `{"n":1}` {
		t.Fatalf("Delete touched another function's map: %q", got)
	}

	// The bucket: one key per function, one revision each, the value cap.
	kv, err := js.KeyValue(ctx, "TRIGGER_DATASTORE")
	if err != nil {
		t.Fatal(err)
	}
	st2, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st2.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if cfg.MaxMsgSize != datastore.DefaultMaxBytes || st2.History() != 1 {
		t.Errorf("bucket max msg size %d, history %d; want %d, 1", cfg.MaxMsgSize, st2.History(), datastore.DefaultMaxBytes)
	}
	if e, err := kv.Get(ctx, datastore.Key("other fn/é")); err != nil || string(e.Value()) != `{"n":1}` {
		t.Errorf("key %s = %v, %v", datastore.Key("other fn/é"), e, err)
	}
}

func TestStoreKey(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{"backup_on_job", "backup_on_job"},
		{"a-b_C9", "a-b_C9"},
		{"a.b", "=YS5i"},
		{"=YS5i", "=PVlTNWk"},
		{"x y", "=eCB5"},
	} {
		if got := datastore.Key(tt.give); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestStoreLimits(t *testing.T) {
	st, _ := boundStore(t, 16)
	err := st.Put(t.Context(), "f", []byte(`{"k":"0123456789"}`))
	if !errors.Is(err, datastore.ErrTooLarge) {
		t.Fatalf("Put(18 bytes) with a 16-byte limit = %v, want ErrTooLarge", err)
	}
	if err := st.Put(t.Context(), "f", []byte(`{"k":"01234567"}`)); err != nil {
		t.Fatalf("Put(16 bytes) = %v", err)
	}
}

func TestStoreUnbound(t *testing.T) {
	st, err := datastore.New(datastore.Config{Bucket: "TRIGGER_DATASTORE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "f"); !errors.Is(err, datastore.ErrNoJetStream) {
		t.Errorf("Get() unbound = %v, want ErrNoJetStream", err)
	}
	if err := st.Put(t.Context(), "f", []byte(`{}`)); !errors.Is(err, datastore.ErrNoJetStream) {
		t.Errorf("Put() unbound = %v, want ErrNoJetStream", err)
	}
	if err := st.Delete(t.Context(), "f"); !errors.Is(err, datastore.ErrNoJetStream) {
		t.Errorf("Delete() unbound = %v, want ErrNoJetStream", err)
	}
	for _, cfg := range []datastore.Config{{}, {Bucket: "B", MaxBytes: -1}} {
		if _, err := datastore.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}
