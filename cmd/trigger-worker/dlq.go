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

	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const dlqUsage = `usage: trigger-worker dlq COMMAND [flags]

Dead letters are the durable events that failed every delivery, kept in the
stream <PREFIX>_DLQ with the reason.

commands:
  ls             list the dead letters: sequence, time, original subject, function, attempts,
                 event id, error
  show SEQ       print a dead letter's headers and its event
  replay SEQ     publish the event again to its original subject (through JetStream, with the
                 message id <event id>.replay.SEQ), then delete the dead letter; a dead letter
                 whose event was cut to fit (Trigger-Body-Truncated) cannot be replayed
  replay --all   replay every dead letter
                 (replay marks the event Trigger-Replay: <event id>; with --function REF only
                 that function runs it, e.g. the one that failed, not those that had succeeded)
  purge          delete every dead letter

flags:
`

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

// runDLQ is the dlq command: it lists, shows, replays and purges the dead
// letters of durable delivery.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("dlq", stderr)
	all := cf.fs.Bool("all", false, "replay: every dead letter")
	function := cf.fs.String("function", "", "replay: run the event with this function only (by ref)")
	timeout := cf.fs.Duration("timeout", 10*time.Second, "bound of each JetStream request")
	cmd, rest, err := subcommand(cf, dlqUsage, "ls, show, replay or purge", args, stderr)
	if err != nil {
		return err
	}
	var seq uint64
	if *function != "" && cmd != "replay" {
		return usagef("dlq %s takes no --function", cmd)
	}
	switch cmd {
	case "ls", "purge":
		if len(rest) > 0 || *all {
			return usagef("dlq %s takes no arguments", cmd)
		}
	case "show":
		if len(rest) != 1 || *all {
			return usagef("dlq show takes one SEQ")
		}
	case "replay":
		if *all == (len(rest) == 1) || len(rest) > 1 {
			return usagef("dlq replay takes one SEQ or --all")
		}
	default:
		cf.fs.Usage()
		return usagef("unknown dlq command %q", cmd)
	}
	if len(rest) == 1 {
		if seq, err = strconv.ParseUint(rest[0], 10, 64); err != nil || seq == 0 {
			return usagef("dlq %s: SEQ %q is not a sequence number (see dlq ls)", cmd, rest[0])
		}
	}
	scheme, nc, js, err := toolJetStream(cf, "trigger-worker dlq", *timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	d := &deadLetters{js: js, scheme: scheme, out: stdout, function: *function}
	if d.stream, err = js.Stream(ctx, scheme.DeadLetterStream()); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("no dead-letter stream %s: no worker with durable delivery has run with prefix %q on this NATS", scheme.DeadLetterStream(), scheme.Prefix())
		}
		return fmt.Errorf("dead-letter stream %s: %w", scheme.DeadLetterStream(), err)
	}
	switch cmd {
	case "ls":
		return d.list(ctx)
	case "show":
		return d.show(ctx, seq)
	case "replay":
		if *all {
			return d.replayAll(ctx)
		}
		return d.replay(ctx, seq)
	}
	return d.purge(ctx)
}

// parseInterspersed parses flags before, between and after the positional
// arguments (the flag package stops at the first of those), and returns the
// positional ones. Everything after "--" is positional.
func parseInterspersed(cf *commonFlags, args []string) ([]string, error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := cf.parse(args); err != nil {
			return nil, err
		}
		args = cf.fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// deadLetters works on the dead-letter stream.
type deadLetters struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	scheme   subjects.Scheme
	out      io.Writer
	function string // replay: the one function to run the events; "" for all
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
	filter := d.scheme.Prefix() + ".dlq.>"
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

func (d *deadLetters) list(ctx context.Context) error {
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

func (d *deadLetters) show(ctx context.Context, seq uint64) error {
	m, err := d.get(ctx, seq)
	if err != nil {
		return err
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
// cause are left for another run.
func (d *deadLetters) replayAll(ctx context.Context) error {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return err
	}
	var n int
	var errs []error
	err = d.each(ctx, info.State.LastSeq, func(m *jetstream.RawStreamMsg) error {
		if err := d.replayMsg(ctx, m); err != nil {
			errs = append(errs, err)
			return nil
		}
		n++
		return nil
	})
	errs = append(errs, err)
	fmt.Fprintf(d.out, "replayed %d dead letters\n", n)
	return errors.Join(errs...)
}

// replayMsg publishes a dead letter's event to its original subject with
// its original headers, through JetStream with a new message id, and
// deletes the dead letter once the stream has acknowledged the event.
func (d *deadLetters) replayMsg(ctx context.Context, m *jetstream.RawStreamMsg) error {
	subject := m.Header.Get(worker.HeaderSubject)
	if size, ok := bodyTruncated(m); ok {
		return fmt.Errorf("dead letter %d holds only the first %d of its event's %s bytes (%s): it cannot be replayed; publish event %s again from its source, then purge the dead letter",
			m.Sequence, len(m.Data), size, worker.HeaderBodyTruncated, orDash(letterID(m)))
	}
	if _, err := d.scheme.Parse(subject); err != nil {
		return fmt.Errorf("dead letter %d: original subject %q: %w", m.Sequence, subject, err)
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
	id += ".replay." + strconv.FormatUint(m.Sequence, 10)
	ack, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(d.scheme.EventStream()))
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

func (d *deadLetters) purge(ctx context.Context) error {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return err
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
		if id := eventID(m.Data); id != "" {
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

// eventID returns the id of an event document, "" when it has none.
func eventID(data []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return ""
	}
	return ev.ID
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
