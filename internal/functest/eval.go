package functest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Evaluation is what `trigger-worker eval` prints: the PRE decision, or
// the result of each POST function.
type Evaluation struct {
	// Subject is the event's subject.
	Subject string `json:"subject"`
	// Decision is the PRE decision, as a worker replies it (and emit
	// prints it); nil for a POST type.
	Decision *event.Decision `json:"decision,omitempty"`
	// Functions are the POST functions that ran, in order, each with its
	// outcome, error and duration; empty for a PRE type (the decision has
	// them).
	Functions []event.FunctionResult `json:"functions,omitempty"`
}

// Eval runs the functions of off for typ and option on the event data:
// the PRE chain's decision, or each POST function in turn.
func Eval(ctx context.Context, off *worker.Offline, prefix, typ, option string, data []byte) (*Evaluation, error) {
	t, err := subjects.Lookup(typ)
	if err != nil {
		return nil, err
	}
	scheme, err := subjects.NewScheme(prefix)
	if err != nil {
		return nil, err
	}
	subject, err := scheme.Build(typ, option)
	if err != nil {
		return nil, err
	}
	ev := &Evaluation{Subject: subject}
	if t.IsPre() {
		ev.Decision, err = off.Decide(ctx, typ, option, data, "")
		return ev, err
	}
	calls, err := off.Run(ctx, typ, option, data, "")
	if err != nil {
		return nil, err
	}
	ev.Functions = []event.FunctionResult{}
	for _, c := range calls {
		fr := event.FunctionResult{Ref: c.Ref, Result: c.Outcome, Ms: float64(c.Duration.Microseconds()) / 1000}
		if c.Err != nil {
			fr.Error = c.Err.Error()
		}
		ev.Functions = append(ev.Functions, fr)
	}
	return ev, nil
}

// WriteEvalJSON prints ev as JSON: the decision exactly as emit prints
// it for a PRE type, else the subject and the functions' results.
func WriteEvalJSON(w io.Writer, ev *Evaluation) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if ev.Decision != nil {
		return enc.Encode(ev.Decision)
	}
	return enc.Encode(ev)
}

// WriteEvalText prints ev for a reader: the decision's fields and a line
// per function.
func WriteEvalText(w io.Writer, ev *Evaluation) error {
	fns := ev.Functions
	if d := ev.Decision; d != nil {
		fmt.Fprintf(w, "subject:  %s\nallowed:  %t\n", ev.Subject, d.Allowed)
		if d.Code != "" {
			fmt.Fprintf(w, "code:     %s\n", d.Code)
		}
		if d.Message != "" {
			fmt.Fprintf(w, "message:  %s\n", d.Message)
		}
		if d.Function != "" {
			fmt.Fprintf(w, "function: %s\n", d.Function)
		}
		if d.Modified {
			fmt.Fprintf(w, "input:    %s\n", d.Input)
		}
		fns = d.Functions
	} else {
		fmt.Fprintf(w, "subject:  %s\n", ev.Subject)
	}
	if len(fns) == 0 {
		_, err := fmt.Fprintln(w, "no function runs for this event")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tRESULT\tMS\tERROR")
	for _, f := range fns {
		res := f.Result
		if f.Shadow {
			res += " (shadow)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\n", f.Ref, res, f.Ms, strings.ReplaceAll(f.Error, "\n", " "))
	}
	return tw.Flush()
}
