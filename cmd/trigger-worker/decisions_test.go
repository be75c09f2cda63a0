package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestDecisionsCommand: decisions --denied -o json prints exactly the
// refused decisions, --type/--option/--code narrow them, and the table
// lists every decision.
func TestDecisionsCommand(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	decide := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in struct{ N int }
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, err
		}
		if in.N%3 == 0 {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA", ErrorMessage: "no more"}, nil
		}
		return handlers.Result{ExitState: handlers.Success}, nil
	}
	w, err := worker.New(natstest.Connect(t, s), worker.Config{DecisionLog: &worker.DecisionLogConfig{}},
		worker.Function{Ref: "quota", TriggerType: "PRE_CREATE", Options: []string{"ANY"}, Handler: handlers.Func(decide)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	denied := map[string]bool{}
	for i := range n {
		option := "SERVER"
		if i%2 == 1 {
			option = "DISK"
		}
		d, err := c.Decide(context.Background(), "PRE_CREATE", option, &event.Event{Input: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			denied[d.ID] = true
		}
	}
	decisions := func(args ...string) []worker.DecisionRecord {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append(append([]string{"decisions"}, args...), "--nats-url", s.ClientURL()), &out, &errOut); err != nil {
			t.Fatalf("decisions %v: %v\n%s", args, err, errOut.String())
		}
		var recs []worker.DecisionRecord
		for line := range strings.Lines(out.String()) {
			var r worker.DecisionRecord
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("decisions %v: line %q: %v", args, line, err)
			}
			recs = append(recs, r)
		}
		return recs
	}
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := len(decisions("-o", "json")); got != n {
			return fmt.Errorf("%d records, want %d", got, n)
		}
		return nil
	})
	got := decisions("--denied", "-o", "json")
	if len(got) != len(denied) {
		t.Fatalf("decisions --denied printed %d records, want the %d refusals", len(got), len(denied))
	}
	for _, r := range got {
		if !denied[r.ID] || r.Allowed || r.Code != "QUOTA" || r.Function != "quota" {
			t.Errorf("decisions --denied printed %+v, not one of the refusals", r)
		}
		delete(denied, r.ID)
	}
	if all := decisions("-o", "json"); len(all) != n {
		t.Errorf("decisions printed %d records, want %d", len(all), n)
	}
	disk := decisions("--type", "PRE_CREATE", "--option", "DISK", "--code", "QUOTA", "-o", "json")
	if len(disk) != 5 { // the odd multiples of 3 below 30
		t.Errorf("--option DISK --code QUOTA printed %d records, want 5", len(disk))
	}
	for _, r := range disk {
		if r.Subject != "trigger.PRE_CREATE.DISK" || r.Code != "QUOTA" {
			t.Errorf("--option DISK --code QUOTA printed %+v", r)
		}
	}
	if got := decisions("--since", "1h", "--until", "1h", "-o", "json"); len(got) != 0 {
		t.Errorf("--until 1h ago printed %d records, want none", len(got))
	}

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"decisions", "--denied", "-o", "yaml", "--nats-url", s.ClientURL()}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	docs := yaml.NewDecoder(&out)
	for i := 0; ; i++ {
		var doc map[string]any
		err := docs.Decode(&doc)
		if errors.Is(err, io.EOF) {
			if i != len(got) {
				t.Errorf("decisions -o yaml printed %d documents, want %d", i, len(got))
			}
			break
		}
		if err != nil {
			t.Fatalf("decisions -o yaml: document %d: %v", i, err)
		}
		if doc["allowed"] != false || doc["code"] != "QUOTA" || doc["function"] != "quota" {
			t.Errorf("decisions -o yaml document %d = %v", i, doc)
		}
	}

	out.Reset()
	if err := run(context.Background(), []string{"decisions", "--nats-url", s.ClientURL()}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != n+1 || !strings.HasPrefix(out.String(), "TIME") {
		t.Errorf("table has %d lines, want a header and %d:\n%s", lines, n, out.String())
	}
}

// TestTimeWindow: --since and --until of decisions and replay read a
// duration ago or an RFC 3339 time; a bad value or an end before the
// start is a usage error naming the command and the flag.
func TestTimeWindow(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	from, to, err := timeWindow("replay", now, "2h", "2026-12-05T11:30:00Z")
	if err != nil || !from.Equal(now.Add(-2*time.Hour)) || !to.Equal(now.Add(-30*time.Minute)) {
		t.Errorf("timeWindow(2h, 11:30) = %v, %v, %v", from, to, err)
	}
	if _, to, err := timeWindow("decisions", now, "1h", ""); err != nil || !to.IsZero() {
		t.Errorf("no --until: %v, %v; want the zero time", to, err)
	}
	for _, tc := range []struct{ since, until, want string }{
		{"yesterday", "", `decisions --since: "yesterday" is neither`},
		{"-1h", "", `decisions --since: "-1h" is negative`},
		{"1h", "soon", `decisions --until: "soon" is neither`},
		{"1h", "2h", "decisions --until 2h is before --since 1h"},
	} {
		_, _, err := timeWindow("decisions", now, tc.since, tc.until)
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("timeWindow(%q, %q): %v, want a usage error with %q", tc.since, tc.until, err, tc.want)
		}
	}
}
