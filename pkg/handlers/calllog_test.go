package handlers_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestCallLoggerLines checks that a call's logger writes the lines l.With
// writes with the call's attributes, with the JSON and text handlers, with
// a group opened before and after, and for loggers derived from it.
func TestCallLoggerLines(t *testing.T) {
	ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER"}
	noTime := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	handlerOf := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
	}
	writes := map[string]func(l *slog.Logger){
		"line":            func(l *slog.Logger) { l.Info("function failed", "outcome", "ERROR", "n", 3) },
		"no attributes":   func(l *slog.Logger) { l.Warn("slow") },
		"group attribute": func(l *slog.Logger) { l.Error("bad", slog.Group("res", "code", "X", "ms", 1.5)) },
		"with":            func(l *slog.Logger) { l.With("k", "v").Info("derived", "a", 1) },
		"with group":      func(l *slog.Logger) { l.WithGroup("fn").Info("grouped", "a", 1) },
		"debug":           func(l *slog.Logger) { l.Debug("function ran", "outcome", "CONTINUE") },
		"context":         func(l *slog.Logger) { l.InfoContext(context.Background(), "ctx", "a", true) },
	}
	for hname, newHandler := range handlerOf {
		for _, base := range []string{"plain", "grouped"} {
			for wname, write := range writes {
				var want, got bytes.Buffer
				lw, lg := slog.New(newHandler(&want)), slog.New(newHandler(&got))
				if base == "grouped" {
					lw, lg = lw.WithGroup("worker").With("instance", "w1"), lg.WithGroup("worker").With("instance", "w1")
				}
				write(lw.With(slog.String(handlers.LogFunction, "noop"), slog.String(handlers.LogEventID, ev.ID),
					slog.String(handlers.LogTriggerType, ev.TriggerType), slog.String(handlers.LogOption, ev.TriggerOption)))
				write(handlers.CallLogger(lg, "noop", ev))
				if got.String() != want.String() || got.Len() == 0 {
					t.Errorf("%s, %s logger, %s:\n got  %s want %s", hname, base, wname, got.String(), want.String())
				}
			}
		}
	}
}

// TestCallLoggerDiscard checks that a logger that logs nothing is the call's
// logger as it is.
func TestCallLoggerDiscard(t *testing.T) {
	l := slog.New(slog.DiscardHandler)
	if got := handlers.CallLogger(l, "noop", &event.Event{ID: "e1"}); got != l {
		t.Errorf("CallLogger of a discarding logger = %p, want it as it is (%p)", got, l)
	}
}

// TestCallLogAllocs checks that a call's logger in a CallLog of the
// caller's allocates nothing until it writes.
func TestCallLogAllocs(t *testing.T) {
	l := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))
	ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER"}
	logs := make([]handlers.CallLog, 200)
	i := 0
	if n := testing.AllocsPerRun(100, func() {
		if cl := logs[i].Init(l, "noop", ev); !cl.Enabled(context.Background(), slog.LevelError) {
			t.Fatal("the call's logger is not enabled")
		}
		i++
	}); n != 0 {
		t.Errorf("CallLog.Init allocates %v times, want 0", n)
	}
}

// BenchmarkCallLogger is a call's logger that writes nothing, what every
// call of a function pays for one with the JSON handler.
func BenchmarkCallLogger(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))
	ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER"}
	b.ReportAllocs()
	for b.Loop() {
		var cl handlers.CallLog
		if cl.Init(l, "noop", ev) == nil {
			b.Fatal("no logger")
		}
	}
}
