package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// ErrNoBus is the error of every publish and request of a function run by
// an [Offline] runner without a bus.
var ErrNoBus = errors.New("worker: no NATS: publishes and requests are not available offline")

// OfflineConfig configures an [Offline] runner. Zero values mean the
// defaults.
type OfflineConfig struct {
	// Prefix is the subject prefix events are checked against; "" means
	// subjects.DefaultPrefix.
	Prefix string
	// MaxEventBytes bounds an event's size; 0 means event.DefaultMaxBytes.
	MaxEventBytes int
	// Logger gets the functions' log lines and the lines about failed
	// calls; nil discards them.
	Logger *slog.Logger
	// Bus is what the functions publish and request through; nil makes
	// every publish and request fail with an error wrapping [ErrNoBus].
	Bus handlers.Bus
}

// Offline runs functions on events without NATS, through the worker's own
// path: the same decoding of the event, matching, call path (result check,
// recover, the function's timeout), PRE chain and decision as a [Worker]
// serving them. Only the messages differ: the functions' publishes and
// requests go to [OfflineConfig.Bus]. It is what `trigger-worker test` and
// `trigger-worker eval` run functions with.
type Offline struct {
	w *Worker
}

// NewOffline returns a runner of fns. Every function is checked first, as
// [New] checks them; any problem is an error and no runner. SCHEDULED
// functions need no JetStream here: their ticks are the events given.
func NewOffline(cfg OfflineConfig, fns ...Function) (*Offline, error) {
	set, err := compile(fns)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = subjects.DefaultPrefix
	}
	scheme, err := subjects.NewScheme(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	bus := cfg.Bus
	if bus == nil {
		bus = noBus{}
	}
	w := &Worker{
		cfg:     Config{Prefix: cfg.Prefix, MaxEventBytes: cfg.MaxEventBytes},
		scheme:  scheme,
		origin:  NewOrigin(nil, 0),
		metrics: metrics,
		log:     log.With("component", "worker"),
		limits:  event.Limits{MaxBytes: cfg.MaxEventBytes},
		bus:     bus,
	}
	w.state.Store(w.newState(set))
	return &Offline{w: w}, nil
}

// Decide runs the PRE functions for typ and option on the event data (JSON,
// as published) and returns the decision a worker would reply: the
// functions in priority order, each with the input the one before left,
// stopping at the first refusal. only, when not "", runs only the function
// of that ref. No matching function is the worker's NO_TRIGGER decision. An
// event that does not decode, or a type that is not PRE, is an error.
func (o *Offline) Decide(ctx context.Context, typ, option string, data []byte, only string) (*event.Decision, error) {
	in, err := o.admit(typ, option, data, only)
	if err != nil {
		return nil, err
	}
	if !in.subj.Type.IsPre() {
		return nil, fmt.Errorf("worker: %s is not a PRE trigger type", typ)
	}
	if in.ev == nil {
		return &event.Decision{Allowed: true, Code: event.CodeNoTrigger}, nil
	}
	return o.w.chain(ctx, in.st, in.entries, in.ev, nil), nil
}

// Run runs the POST (or SCHEDULED) functions for typ and option on the
// event data, each in turn as a worker does, and returns what each did;
// only, when not "", runs only the function of that ref. No matching
// function is no results. An event that does not decode, or a PRE type, is
// an error.
func (o *Offline) Run(ctx context.Context, typ, option string, data []byte, only string) ([]OfflineCall, error) {
	in, err := o.admit(typ, option, data, only)
	if err != nil {
		return nil, err
	}
	if in.subj.Type.IsPre() {
		return nil, fmt.Errorf("worker: %s is a PRE trigger type: ask for a decision", typ)
	}
	var calls []OfflineCall
	if in.ev == nil {
		return calls, nil
	}
	for _, e := range in.entries {
		began := time.Now()
		res, outcome, _, err := o.w.call(ctx, in.st, e, in.ev, 0)
		calls = append(calls, OfflineCall{Ref: e.Ref, Outcome: outcome, Result: res, Err: err, Duration: time.Since(began)})
	}
	return calls, nil
}

// OfflineCall is what one function did in [Offline.Run].
type OfflineCall struct {
	Ref string
	// Outcome is an event.Outcome* value: SUCCESS, CONTINUE, FAILED, ERROR
	// or TIMEOUT.
	Outcome string
	// Result is the function's result; Err its error.
	Result   handlers.Result
	Err      error
	Duration time.Duration
}

// admit builds the subject of typ and option and lets the worker's intake
// match and decode the event; in.ev is nil when no function matches.
func (o *Offline) admit(typ, option string, data []byte, only string) (*inbound, error) {
	subject, err := o.w.scheme.Build(typ, option)
	if err != nil {
		return nil, err
	}
	subj, err := o.w.scheme.Parse(subject)
	if err != nil {
		return nil, err
	}
	in := &inbound{subject: subject, data: data, subj: subj, only: only, start: time.Now()}
	switch o.w.admit(in, nil) {
	case invalid:
		return nil, in.err
	case admitted:
		return in, nil
	}
	in.ev = nil
	return in, nil
}

// noBus is the bus of an Offline runner without one.
type noBus struct{}

func (noBus) Publish(_ context.Context, subject string, _ []byte) error {
	return fmt.Errorf("%w (publish on %s)", ErrNoBus, subject)
}

func (noBus) Request(_ context.Context, subject string, _ []byte, _ time.Duration) ([]byte, error) {
	return nil, fmt.Errorf("%w (request on %s)", ErrNoBus, subject)
}
