package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// dlqHeaders are the headers the worker adds to a dead letter; a replay
// leaves them out.
var dlqHeaders = []string{
	worker.HeaderFailedFunction, worker.HeaderError, worker.HeaderAttempts,
	worker.HeaderSubject, worker.HeaderFailedAt, worker.HeaderOriginalMsgID,
	worker.HeaderEventSeq, worker.HeaderBodyTruncated, worker.HeaderHeadersDropped,
	worker.HeaderReplay, worker.HeaderReplayFunction,
}

// dlqErrorWidth is how much of a dead letter's error ls shows.
const dlqErrorWidth = 60

const dlqLong = `Dead letters are the durable events that failed every delivery, kept in the
stream <PREFIX>_DLQ with the reason.`

func newDLQCmd() *cobra.Command {
	return groupCmd("dlq", "See, replay and purge the dead letters of durable delivery", dlqLong,
		dlqCmd("ls", "List the dead letters: sequence, time, original subject, function, attempts, event id, error",
			"", cobra.NoArgs, "no arguments", func(o *dlqOptions, cmd *cobra.Command) { o.output = addOutputFlag(cmd) },
			func(ctx context.Context, d *deadLetters, o *dlqOptions, _ []string) error {
				return d.list(ctx, *o.output)
			}),
		dlqCmd("show SEQ", "Print a dead letter's headers and its event",
			"", cobra.ExactArgs(1), "one SEQ", func(o *dlqOptions, cmd *cobra.Command) { o.output = addOutputFlag(cmd) },
			func(ctx context.Context, d *deadLetters, o *dlqOptions, args []string) error {
				return d.show(ctx, o.seq, *o.output)
			}),
		dlqCmd("replay [SEQ]", "Publish a dead letter's event again to its original subject, then delete the dead letter",
			`Publishes the event of dead letter SEQ (or of every one with --all) again to its
original subject, through JetStream with the message id <event id>.replay.SEQ,
then deletes the dead letter. The event is marked Trigger-Replay: <event id>;
with --function REF only that function runs it (e.g. the one that failed, not
those that had succeeded). A dead letter whose event was cut to fit
(Trigger-Body-Truncated) cannot be replayed.`, cobra.MaximumNArgs(1), "one SEQ or --all",
			func(o *dlqOptions, cmd *cobra.Command) {
				cmd.Flags().BoolVar(&o.all, "all", false, "replay every dead letter")
				cmd.Flags().StringVar(&o.function, "function", "", "run the event with this function only (by ref)")
			},
			func(ctx context.Context, d *deadLetters, o *dlqOptions, _ []string) error {
				if o.all {
					return d.replayAll(ctx)
				}
				return d.replay(ctx, o.seq)
			}),
		dlqCmd("purge", "Delete every dead letter (asks on a terminal; --force without one)",
			"", cobra.NoArgs, "no arguments",
			func(o *dlqOptions, cmd *cobra.Command) {
				cmd.Flags().BoolVar(&o.force, "force", false, "delete without asking (needed when stdin is not a terminal)")
			},
			func(ctx context.Context, d *deadLetters, o *dlqOptions, _ []string) error {
				return d.purge(ctx, o.force)
			}),
	)
}

// dlqOptions are the flags and the SEQ argument of the dlq commands.
type dlqOptions struct {
	timeout    time.Duration
	output     *outputFormat
	all, force bool
	function   string
	seq        uint64
}

// dlqCmd builds one dlq command: flags declares its own flags, do runs it
// on the dead-letter stream.
func dlqCmd(use, short, long string, args cobra.PositionalArgs, argsText string, flags func(*dlqOptions, *cobra.Command),
	do func(context.Context, *deadLetters, *dlqOptions, []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: argsError(argsText, args)}
	o := &dlqOptions{}
	cf := addCommonFlags(cmd, true, "prefix", "embedded-listen")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "bound of each JetStream request")
	flags(o, cmd)
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		name := cmd.Name()
		if name == "replay" && o.all == (len(args) == 1) {
			return usagef("dlq replay takes one SEQ or --all")
		}
		if len(args) == 1 {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return usagef("dlq %s: SEQ %q is not a sequence number (see dlq ls)", name, args[0])
			}
			o.seq = seq
		}
		if name == "purge" {
			if err := needForce("dlq purge", o.force); err != nil {
				return err
			}
		}
		scheme, nc, js, err := toolJetStream(cf, "trigger-worker dlq", o.timeout)
		if err != nil {
			return err
		}
		defer nc.Close()
		d := &deadLetters{js: js, scheme: scheme, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), function: o.function, timeout: o.timeout}
		if d.stream, err = js.Stream(cmd.Context(), scheme.DeadLetterStream()); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("no dead-letter stream %s: no worker with durable delivery has run with prefix %q on this NATS", scheme.DeadLetterStream(), scheme.Prefix())
			}
			return fmt.Errorf("dead-letter stream %s: %w", scheme.DeadLetterStream(), err)
		}
		return do(cmd.Context(), d, o, args)
	})
	return cmd
}

// deadLetters works on the dead-letter stream.
type deadLetters struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	scheme   subjects.Scheme
	out      io.Writer
	errOut   io.Writer     // the confirmation question of purge
	function string        // replay: the one function to run the events; "" for all
	timeout  time.Duration // of each JetStream request (--timeout)
}

// each calls f for every dead letter up to the sequence last (0: the
// stream's last now), oldest first.
func (d *deadLetters) each(ctx context.Context, last uint64, f func(*jetstream.RawStreamMsg) error) error {
	if last == 0 {
		info, err := d.stream.Info(ctx)
		if err != nil {
			return err
		}
		last = info.State.LastSeq
	}
	filter := d.scheme.DeadLetters()
	for seq := uint64(1); seq <= last; {
		m, err := d.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		if m.Sequence > last {
			return nil
		}
		if err := f(m); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// deadLetter is a dead letter as dlq ls and dlq show print it with -o json
// or yaml (docs/cli.md).
type deadLetter struct {
	Seq       uint64    `json:"seq"`
	FailedAt  time.Time `json:"failed_at"`
	StoredAt  time.Time `json:"stored_at"`
	Subject   string    `json:"subject"` // the event's original subject
	Function  string    `json:"function"`
	Attempts  int       `json:"attempts"`
	ID        string    `json:"id"`
	Error     string    `json:"error"`
	EventSize int       `json:"event_size,omitempty"` // the event's size when the dead letter holds only part of it
	// show only:
	Headers   map[string][]string `json:"headers,omitempty"`
	Event     json.RawMessage     `json:"event,omitempty"`      // the event, when it is JSON
	EventText string              `json:"event_text,omitempty"` // the event (or the part kept), when it is not JSON or was cut
}

func newDeadLetter(m *jetstream.RawStreamMsg) deadLetter {
	l := deadLetter{Seq: m.Sequence, FailedAt: failedAt(m), StoredAt: m.Time.UTC(), Subject: m.Header.Get(worker.HeaderSubject),
		Function: m.Header.Get(worker.HeaderFailedFunction), ID: letterID(m), Error: m.Header.Get(worker.HeaderError)}
	l.Attempts, _ = strconv.Atoi(m.Header.Get(worker.HeaderAttempts))
	if cut, ok := bodyTruncated(m); ok {
		l.EventSize, _ = strconv.Atoi(cut)
	}
	return l
}

func (d *deadLetters) list(ctx context.Context, format outputFormat) error {
	if format != "table" {
		letters := []deadLetter{}
		err := d.each(ctx, 0, func(m *jetstream.RawStreamMsg) error {
			letters = append(letters, newDeadLetter(m))
			return nil
		})
		if err != nil {
			return err
		}
		return encode(d.out, format, letters)
	}
	tw := tabwriter.NewWriter(d.out, 0, 8, 2, ' ', 0)
	n := 0
	err := d.each(ctx, 0, func(m *jetstream.RawStreamMsg) error {
		if n == 0 {
			fmt.Fprintln(tw, "SEQ\tFAILED AT\tSUBJECT\tFUNCTION\tATTEMPTS\tID\tERROR")
		}
		n++
		errText := m.Header.Get(worker.HeaderError)
		if cut, ok := bodyTruncated(m); ok {
			errText = "[event cut to " + strconv.Itoa(len(m.Data)) + " of " + cut + " bytes] " + errText
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Sequence, failedAt(m).Format(time.RFC3339),
			orDash(m.Header.Get(worker.HeaderSubject)), orDash(m.Header.Get(worker.HeaderFailedFunction)),
			orDash(m.Header.Get(worker.HeaderAttempts)), orDash(truncate(letterID(m), dlqErrorWidth)),
			orDash(truncate(errText, dlqErrorWidth)))
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err == nil && n == 0 {
		fmt.Fprintf(d.out, "no dead letters in %s\n", d.scheme.DeadLetterStream())
	}
	return err
}

func (d *deadLetters) show(ctx context.Context, seq uint64, format outputFormat) error {
	m, err := d.get(ctx, seq)
	if err != nil {
		return err
	}
	if format != "table" {
		l := newDeadLetter(m)
		l.Headers = map[string][]string(m.Header)
		_, cut := bodyTruncated(m)
		if !cut && json.Valid(m.Data) {
			l.Event = m.Data
		} else {
			l.EventText = string(m.Data)
		}
		return encode(d.out, format, l)
	}
	fmt.Fprintf(d.out, "seq:       %d\n", m.Sequence)
	fmt.Fprintf(d.out, "stored at: %s\n", m.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(d.out, "subject:   %s\n", m.Subject)
	fmt.Fprintf(d.out, "event id:  %s\n", orDash(letterID(m)))
	fmt.Fprintf(d.out, "function:  %s\n", orDash(m.Header.Get(worker.HeaderFailedFunction)))
	fmt.Fprintf(d.out, "error:     %s\n", orDash(m.Header.Get(worker.HeaderError)))
	fmt.Fprintln(d.out, "headers:")
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range m.Header[k] {
			fmt.Fprintf(d.out, "  %s: %s\n", k, v)
		}
	}
	if size, ok := bodyTruncated(m); ok {
		fmt.Fprintf(d.out, "event (cut: the first %d of %s bytes; it cannot be replayed): %q\n", len(m.Data), size, m.Data)
		return nil
	}
	switch {
	case len(m.Data) == 0:
		fmt.Fprintln(d.out, "event: (empty)")
	case json.Valid(m.Data):
		var b bytes.Buffer
		_ = json.Indent(&b, m.Data, "", "  ") // valid JSON indents
		fmt.Fprintf(d.out, "event:\n%s\n", b.Bytes())
	default:
		fmt.Fprintf(d.out, "event (not JSON): %q\n", m.Data)
	}
	return nil
}

func (d *deadLetters) get(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := d.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("no dead letter %d in %s (see dlq ls)", seq, d.scheme.DeadLetterStream())
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return m, nil
}

func (d *deadLetters) replay(ctx context.Context, seq uint64) error {
	m, err := d.get(ctx, seq)
	if err != nil {
		return err
	}
	return d.replayMsg(ctx, m)
}

// replayAll replays the dead letters there are now; those the replays
// cause are left for another run. It reads the dead letters one after the
// other while their events are published without waiting for each ack
// (at most replayWindow waiting); a second goroutine takes the acks in
// the dead letters' order, deletes each dead letter whose event the stream
// acknowledged and reports it, so that a replay costs about one round trip
// rather than three (read, publish, delete).
func (d *deadLetters) replayAll(ctx context.Context) error {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return err
	}
	pending := make(chan *replaying, replayWindow)
	var n int
	var errs []error
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for r := range pending {
			if err := d.settle(ctx, r); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}()
	err = d.each(ctx, info.State.LastSeq, func(m *jetstream.RawStreamMsg) error {
		r := d.publishAsync(m)
		select {
		case pending <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(pending)
	<-settled
	errs = append(errs, err)
	fmt.Fprintf(d.out, "replayed %d dead letters\n", n)
	return errors.Join(errs...)
}

// replaying is a dead letter whose event is published again as id: the
// ack to wait for, or the error that kept it from being published.
type replaying struct {
	inflightReplay
	m  *jetstream.RawStreamMsg
	id string
}

// replayMsg replays one dead letter, waiting for each step.
func (d *deadLetters) replayMsg(ctx context.Context, m *jetstream.RawStreamMsg) error {
	msg, id, err := d.replayOf(m)
	if err != nil {
		return err
	}
	ack, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(d.scheme.EventStream()))
	return d.finish(ctx, m, msg.Subject, id, ack, err)
}

// publishAsync publishes a dead letter's event again without waiting for
// the stream's ack.
func (d *deadLetters) publishAsync(m *jetstream.RawStreamMsg) *replaying {
	r := &replaying{m: m, inflightReplay: inflightReplay{seq: m.Sequence}}
	msg, id, err := d.replayOf(m)
	if err != nil {
		r.err = err
		return r
	}
	r.subject, r.id = msg.Subject, id
	r.ack, r.err = d.js.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(d.scheme.EventStream()))
	return r
}

// settle waits for the ack of r's publish and finishes its replay.
func (d *deadLetters) settle(ctx context.Context, r *replaying) error {
	if r.subject == "" {
		// Not published (replayOf refused it): its error says why as it is.
		return r.err
	}
	ack, err := r.wait(d.timeout)
	return d.finish(ctx, r.m, r.subject, r.id, ack, err)
}

// replayOf builds the message that replays dead letter m, with the message
// id of its publish: its event to its original subject with its original
// headers (but JetStream's own and the dead-letter ones).
func (d *deadLetters) replayOf(m *jetstream.RawStreamMsg) (*nats.Msg, string, error) {
	subject := m.Header.Get(worker.HeaderSubject)
	if size, ok := bodyTruncated(m); ok {
		return nil, "", fmt.Errorf("dead letter %d holds only the first %d of its event's %s bytes (%s): it cannot be replayed; publish event %s again from its source, then purge the dead letter",
			m.Sequence, len(m.Data), size, worker.HeaderBodyTruncated, orDash(letterID(m)))
	}
	if _, err := d.scheme.Parse(subject); err != nil {
		return nil, "", fmt.Errorf("dead letter %d: original subject %q: %w", m.Sequence, subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	for k, v := range m.Header {
		// JetStream's own headers (Nats-Msg-Id, Nats-Expected-*) would
		// change what the publish means.
		if slices.Contains(dlqHeaders, k) || strings.HasPrefix(k, "Nats-") {
			continue
		}
		msg.Header[k] = slices.Clone(v)
	}
	id := letterID(m)
	if id != "" {
		msg.Header.Set(worker.HeaderReplay, id)
	} else {
		id = d.scheme.DeadLetterStream()
	}
	if d.function != "" {
		msg.Header.Set(worker.HeaderReplayFunction, d.function)
	}
	return msg, id + ".replay." + strconv.FormatUint(m.Sequence, 10), nil
}

// finish ends the replay of dead letter m, published to subject as id with
// the outcome ack or err: the dead letter is deleted once the stream has
// acknowledged its event, and kept otherwise.
func (d *deadLetters) finish(ctx context.Context, m *jetstream.RawStreamMsg, subject, id string, ack *jetstream.PubAck, err error) error {
	if err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w (the dead letter is kept)", m.Sequence, subject, err)
	}
	if err := d.stream.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter %d was replayed (%s seq %d) but not deleted: %w", m.Sequence, ack.Stream, ack.Sequence, err)
	}
	note := ""
	if ack.Duplicate {
		note = " (already replayed: the stream kept the first copy)"
	}
	fmt.Fprintf(d.out, "replayed dead letter %d to %s as %s%s\n", m.Sequence, subject, id, note)
	return nil
}

func (d *deadLetters) purge(ctx context.Context, force bool) error {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		fmt.Fprintf(d.out, "no dead letters in %s\n", d.scheme.DeadLetterStream())
		return nil
	}
	if !force && !confirm(d.errOut, fmt.Sprintf("Delete the %d dead letters of %s?", info.State.Msgs, d.scheme.DeadLetterStream())) {
		return fmt.Errorf("dlq purge: not confirmed: nothing deleted")
	}
	if err := d.stream.Purge(ctx); err != nil {
		return fmt.Errorf("purge %s: %w", d.scheme.DeadLetterStream(), err)
	}
	fmt.Fprintf(d.out, "purged %d dead letters from %s\n", info.State.Msgs, d.scheme.DeadLetterStream())
	return nil
}

// failedAt is when the event was dead-lettered: its Trigger-Failed-At
// header, else when the stream stored it.
func failedAt(m *jetstream.RawStreamMsg) time.Time {
	if ms, err := strconv.ParseInt(m.Header.Get(worker.HeaderFailedAt), 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	return m.Time.UTC()
}

// letterID is the id of a dead letter's event: the id in the event, else
// its original Nats-Msg-Id (kept in Trigger-Msg-Id), "" when it has neither.
func letterID(m *jetstream.RawStreamMsg) string {
	if _, cut := bodyTruncated(m); !cut {
		if id := event.IDOf(m.Data); id != "" {
			return id
		}
	}
	return m.Header.Get(worker.HeaderOriginalMsgID)
}

// bodyTruncated returns the size of the event of a dead letter that holds
// only part of it, and whether it does.
func bodyTruncated(m *jetstream.RawStreamMsg) (string, bool) {
	v, ok := m.Header[worker.HeaderBodyTruncated]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// truncate shortens s to n runes on one line, marking a cut with "…".
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
