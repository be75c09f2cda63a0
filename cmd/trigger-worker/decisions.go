package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// decisionsMessageWidth is how much of a decision's message the table shows.
const decisionsMessageWidth = 60

// decisionFilter selects records: the subject filter is done by the
// server, the rest here.
type decisionFilter struct {
	denied bool
	code   string
	until  time.Time // zero: none
}

// A message of the decision log holds one or more records, as JSON lines;
// they are in time order within a subject, and nearly so across subjects
// (each worker sends what it buffered every 50ms).

func (f decisionFilter) keep(r *worker.DecisionRecord) bool {
	return (!f.denied || !r.Allowed) && (f.code == "" || r.Code == f.code) &&
		(f.until.IsZero() || !r.At.After(f.until))
}

func newDecisionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "Print the PRE decisions of the decision log, oldest first",
		Long: `Prints the PRE decisions of the decision log, the stream <PREFIX>_DECISIONS,
oldest first: with -o table (the default) one line each (time, subject,
decision, code, function, duration, event id); with -o json one record per
line as the workers wrote it; with -o yaml one document per record.`,
		Args: argsError("no arguments", cobra.NoArgs),
	}
	cf := addCommonFlags(cmd, true, "prefix", "embedded-listen")
	f := cmd.Flags()
	var o decisionsOptions
	f.BoolVar(&o.denied, "denied", false, "only refusals")
	f.StringVar(&o.typ, "type", "", "only this trigger type")
	f.StringVar(&o.option, "option", "", "only this option (with --type)")
	f.StringVar(&o.code, "code", "", "only decisions with this code")
	f.StringVar(&o.since, "since", "1h", "from this long ago (a duration) or this time (RFC 3339)")
	f.StringVar(&o.until, "until", "", "up to this long ago (a duration) or this time (RFC 3339); default now")
	f.BoolVar(&o.follow, "follow", false, "then wait for new decisions and print them as they come")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound of each JetStream request")
	output := addOutputFlag(cmd)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		o.output = *output
		return runDecisions(cmd.Context(), cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// decisionsOptions are the flags of decisions.
type decisionsOptions struct {
	denied, follow                  bool
	typ, option, code, since, until string
	output                          outputFormat
	timeout                         time.Duration
}

// runDecisions is the decisions command: it reads the decision log.
func runDecisions(ctx context.Context, cf *commonFlags, o decisionsOptions, stdout, stderr io.Writer) error {
	denied, typ, option, code, since, until, follow, timeout := &o.denied, &o.typ, &o.option, &o.code, &o.since, &o.until, &o.follow, &o.timeout
	if *option != "" && *typ == "" {
		return usagef("decisions --option needs --type")
	}
	from, to, err := timeWindow("decisions", time.Now(), *since, *until)
	if err != nil {
		return err
	}
	f := decisionFilter{denied: *denied, code: *code, until: to}
	scheme, nc, js, err := toolJetStream(cf, "trigger-worker decisions", *timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, scheme.DecisionStream())
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("no decision stream %s: no worker with the decision log on has run with prefix %q on this NATS", scheme.DecisionStream(), scheme.Prefix())
		}
		return fmt.Errorf("decision stream %s: %w", scheme.DecisionStream(), err)
	}
	filter := scheme.Decisions()
	if *typ != "" {
		opt := *option
		if opt == "" {
			opt = ">"
		}
		if _, err := subjects.Lookup(*typ); err != nil {
			return usagef("decisions --type: %w", err)
		}
		filter = scheme.DecisionSubject(*typ, opt)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &from,
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", scheme.DecisionStream(), err)
	}
	out := newDecisionPrinter(stdout, o.output, *follow)
	defer out.flush()
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", scheme.DecisionStream(), err)
	}
	pending := info.NumPending
	for pending > 0 || *follow {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", scheme.DecisionStream(), err)
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		pending = md.NumPending
		for line := range bytes.Lines(m.Data()) {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			var r worker.DecisionRecord
			if err := json.Unmarshal(line, &r); err != nil {
				fmt.Fprintf(stderr, "a decision record in message %d is not one: %v\n", md.Sequence.Stream, err)
				continue
			}
			if f.keep(&r) {
				if err := out.print(&r, line); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// timeWindow reads the --since and --until of command cmd (decisions,
// replay): each a duration before now or an RFC 3339 time; until "" is
// the zero time (no end). A bad value, or an end before the start, is a
// usage error naming the flag.
func timeWindow(cmd string, now time.Time, since, until string) (from, to time.Time, err error) {
	if from, err = pointInTime(now, since); err != nil {
		return from, to, usagef("%s --since: %w", cmd, err)
	}
	if until == "" {
		return from, to, nil
	}
	if to, err = pointInTime(now, until); err != nil {
		return from, to, usagef("%s --until: %w", cmd, err)
	}
	if to.Before(from) {
		return from, to, usagef("%s --until %s is before --since %s", cmd, until, since)
	}
	return from, to, nil
}

// pointInTime reads s as a duration before now or an RFC 3339 time.
func pointInTime(now time.Time, s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q is negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h30m) nor an RFC 3339 time", s)
	}
	return t, nil
}

// decisionPrinter prints records as a table or as JSON lines.
type decisionPrinter struct {
	w      io.Writer
	tw     *tabwriter.Writer // nil for json and yaml
	yaml   bool              // one YAML document per record
	header bool
	follow bool // flush every line
}

func newDecisionPrinter(w io.Writer, format outputFormat, follow bool) *decisionPrinter {
	p := &decisionPrinter{w: w, follow: follow, yaml: format == "yaml"}
	if format == "table" {
		p.tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	}
	return p
}

func (p *decisionPrinter) print(r *worker.DecisionRecord, raw []byte) error {
	if p.yaml {
		if _, err := fmt.Fprintln(p.w, "---"); err != nil {
			return err
		}
		return writeYAML(p.w, raw)
	}
	if p.tw == nil {
		_, err := fmt.Fprintf(p.w, "%s\n", raw)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintln(p.tw, "TIME\tSUBJECT\tDECISION\tCODE\tFUNCTION\tMS\tID\tMESSAGE")
	}
	decision := "allowed"
	if !r.Allowed {
		decision = "denied"
	}
	_, err := fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.At.Format(time.RFC3339Nano), r.Subject, decision,
		orDash(r.Code), orDash(r.Function), strconv.FormatFloat(r.Ms, 'f', 3, 64), orDash(r.ID),
		orDash(truncate(r.Message, decisionsMessageWidth)))
	if err == nil && p.follow {
		// A follower sees each line as it comes.
		err = p.tw.Flush()
	}
	return err
}

func (p *decisionPrinter) flush() {
	if p.tw != nil {
		_ = p.tw.Flush()
	}
}
