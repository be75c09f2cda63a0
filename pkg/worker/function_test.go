package worker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestRegistrationErrors: every misuse of a function is an error from New
// and from Replace, before any event, and names the function.
func TestRegistrationErrors(t *testing.T) {
	h := handlers.Func(noop)
	hourly, err := schedule.Parse(time.Hour, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ok := worker.Function{Ref: "ok", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: h}
	tests := []struct {
		name    string
		give    []worker.Function
		wantErr error
	}{
		{"scheduled without a schedule", []worker.Function{{Ref: "tick", TriggerType: "SCHEDULED", Handler: h}}, worker.ErrScheduleRequired},
		{"schedule on a POST type", []worker.Function{{Ref: "f", TriggerType: "POST_BILLING", Schedule: hourly, Handler: h}}, worker.ErrScheduleNotAllowed},
		{"schedule on a PRE type", []worker.Function{{Ref: "f", TriggerType: "PRE_AUTH", Schedule: hourly, Handler: h}}, worker.ErrScheduleNotAllowed},
		{"nil handler", []worker.Function{{Ref: "f", TriggerType: "POST_BILLING"}}, worker.ErrNoHandler},
		{"duplicate ref", []worker.Function{ok, ok}, worker.ErrDuplicateRef},
		{"empty ref", []worker.Function{{TriggerType: "POST_BILLING", Handler: h}}, worker.ErrEmptyRef},
		{"unknown trigger type", []worker.Function{{Ref: "f", TriggerType: "PRE_CRATE", Options: []string{"SERVER"}, Handler: h}}, subjects.ErrUnknownType},
		{"unknown option", []worker.Function{{Ref: "f", TriggerType: "PRE_CREATE", Options: []string{"SERVERR"}, Handler: h}}, subjects.ErrUnknownOption},
		{"no options on a type with options", []worker.Function{{Ref: "f", TriggerType: "PRE_CREATE", Handler: h}}, worker.ErrNoOptions},
		{"failure policy on POST", []worker.Function{{Ref: "f", TriggerType: "POST_BILLING", FailurePolicy: worker.FailOpen, Handler: h}}, worker.ErrPreOnly},
		{"mode on POST", []worker.Function{{Ref: "f", TriggerType: "POST_BILLING", Mode: worker.Shadow, Handler: h}}, worker.ErrPreOnly},
		{"unknown failure policy", []worker.Function{{Ref: "f", TriggerType: "PRE_AUTH", FailurePolicy: "open", Handler: h}}, worker.ErrUnknownPolicy},
		{"negative timeout", []worker.Function{{Ref: "f", TriggerType: "POST_BILLING", Timeout: -time.Second, Handler: h}}, worker.ErrNegativeTimeout},
	}
	s := natstest.RunServer(t, natstest.WithJetStream())
	nc := natstest.Connect(t, s)
	// Durable, so that a valid SCHEDULED function would be accepted: the
	// errors are the functions', not the worker's.
	cfg := worker.Config{Durable: &worker.DurableConfig{}}
	running := startWorker(t, nc, cfg, ok)
	before := running.Subjects()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := worker.New(nc, cfg, tt.give...)
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, worker.ErrInvalidFunction) || w != nil {
				t.Errorf("New() = %v, %v; want no worker and an error matching %v and ErrInvalidFunction", w, err, tt.wantErr)
			}
			var fe *worker.FunctionError
			if !errors.As(err, &fe) {
				t.Errorf("New() error %v is not a *FunctionError", err)
			}
			if err := running.Replace(context.Background(), tt.give...); !errors.Is(err, tt.wantErr) {
				t.Errorf("Replace() = %v, want an error matching %v", err, tt.wantErr)
			}
			if got := running.Subjects(); !slices.Equal(got, before) {
				t.Errorf("after a refused Replace, subjects = %v, want %v kept", got, before)
			}
		})
	}
}

// TestReplaceAllOrNothing: one bad function among good ones keeps the
// worker serving what it had.
func TestReplaceAllOrNothing(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	w := startWorker(t, nc, worker.Config{}, fn("old", "PRE_AUTH", nil, 0, noop))
	err := w.Replace(context.Background(),
		fn("new", "PRE_DELETE", []string{"ANY"}, 0, noop),
		worker.Function{Ref: "broken", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}})
	if !errors.Is(err, worker.ErrNoHandler) {
		t.Fatalf("Replace() = %v, want ErrNoHandler", err)
	}
	if got, want := w.Subjects(), []string{"trigger.PRE_AUTH.*"}; !slices.Equal(got, want) {
		t.Errorf("Subjects() = %v, want %v", got, want)
	}
	if err := w.Replace(context.Background(), fn("new", "PRE_DELETE", []string{"ANY"}, 0, noop)); err != nil {
		t.Fatal(err)
	}
	if got, want := w.Subjects(), []string{"trigger.PRE_DELETE.*"}; !slices.Equal(got, want) {
		t.Errorf("Subjects() after a good Replace = %v, want %v", got, want)
	}
}
