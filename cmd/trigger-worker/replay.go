package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const replayLong = `Publishes again the events of the archive (archive.enabled: the stream
<PREFIX>_ARCHIVE) stored in a time window, through JetStream to their
original subjects: the workers run them as new durable events. Each is
marked Trigger-Replay: <original event id>; with --function only that
function runs it, else every function of today for its subject does.

Not replayed (counted skipped): events that were replays themselves
(unless --include-replays), events that carried a loop flag
(Trigger-Origin: caused by a function, which the worker ran no function
for), and with --function the SCHEDULED ticks of another function.

On a terminal a progress bar goes to stderr; the counts (matched,
published, skipped, failed) end the output: one line with -o table, one
document with -o json or yaml.`

func newReplayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay --since T",
		Short: "Republish archived POST and SCHEDULED events through the durable path",
		Long:  replayLong,
		Args:  argsError("no arguments", cobra.NoArgs),
	}
	cf := addCommonFlags(cmd, true, "prefix", "embedded-listen")
	f := cmd.Flags()
	var o replayFlags
	f.StringVar(&o.since, "since", "", "from this long ago (a duration, e.g. 2h) or this time (RFC 3339); required")
	f.StringVar(&o.until, "until", "", "up to this long ago (a duration) or this time (RFC 3339); default the archive's end now")
	f.StringVar(&o.opts.Type, "type", "", "only events of this trigger type")
	f.StringVar(&o.opts.Option, "option", "", "only events of this option")
	f.StringVar(&o.opts.Function, "function", "", "run the events with this function only (by ref)")
	f.BoolVar(&o.opts.DryRun, "dry-run", false, "count the events to replay, publish none")
	f.StringVar(&o.rate, "rate", "", "at most this many events a second, e.g. 100 or 100/s; default unbounded")
	f.BoolVar(&o.opts.IncludeReplays, "include-replays", false, "replay events that were replays themselves too")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound of each JetStream request and of each replay's ack")
	output := addOutputFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("type", completeTypes)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		o.output = *output
		return runReplay(cmd.Context(), cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// replayFlags are the flags of replay, as given.
type replayFlags struct {
	opts               replayOptions // Type, Option, Function, DryRun, IncludeReplays
	since, until, rate string
	timeout            time.Duration
	output             outputFormat
}

// replayOptions are what replay republishes and how.
type replayOptions struct {
	Since time.Time // start of the window (the archive's store time)
	Until time.Time // end of the window; zero: the archive's end at the start
	// Type and Option narrow to one trigger type and one option ("": any).
	Type, Option string
	// Function, when set, is the one function that runs the replays.
	Function string
	// DryRun counts without publishing.
	DryRun bool
	// Rate bounds the publishes per second; 0 is unbounded.
	Rate float64
	// IncludeReplays replays events that were replays themselves.
	IncludeReplays bool
	// AckWait bounds the wait for a replay's ack (with the JetStream
	// context's own publish timeout); 0 means 10s.
	AckWait time.Duration
}

// replayCounts are the outcome of a replay: with -o json or yaml, this
// document (docs/cli.md).
type replayCounts struct {
	Matched   int  `json:"matched"`   // archived events in the window and of the type and option
	Published int  `json:"published"` // published again (with DryRun: that would be)
	Skipped   int  `json:"skipped"`   // matched but not to replay (see replayLong)
	Failed    int  `json:"failed"`    // the publish failed
	DryRun    bool `json:"dry_run"`   // nothing was published
}

// runReplay is the replay command.
func runReplay(ctx context.Context, cf *commonFlags, o replayFlags, stdout, stderr io.Writer) error {
	opts := o.opts
	if o.since == "" {
		return usagef("replay needs --since (e.g. --since 2h)")
	}
	var err error
	if opts.Since, opts.Until, err = timeWindow("replay", time.Now(), o.since, o.until); err != nil {
		return err
	}
	if opts.Type != "" {
		t, err := subjects.Lookup(opts.Type)
		if err != nil {
			return usagef("replay --type: %w", err)
		}
		if t.IsPre() {
			return usagef("replay --type %s: PRE events are not archived (only POST and SCHEDULED)", opts.Type)
		}
	}
	if opts.Option != "" {
		if err := subjects.ValidateToken(opts.Option); err != nil {
			return usagef("replay --option: %w", err)
		}
	}
	if opts.Rate, err = parseRate(o.rate); err != nil {
		return usagef("replay --rate: %w", err)
	}
	opts.AckWait = o.timeout
	scheme, nc, js, err := toolJetStream(cf, "trigger-worker replay", o.timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	var progress io.Writer
	if writerIsTerminal(stderr) {
		progress = stderr
	}
	counts, err := replayEvents(ctx, js, scheme, opts, progress)
	if err != nil && counts == (replayCounts{}) {
		return err // nothing read: no counts to print (no archive, say)
	}
	counts.DryRun = opts.DryRun
	if o.output != "table" {
		if perr := encode(stdout, o.output, counts); perr != nil && err == nil {
			err = perr
		}
		return err
	}
	verb := "published"
	if opts.DryRun {
		verb = "would publish"
	}
	fmt.Fprintf(stdout, "matched %d, %s %d, skipped %d, failed %d\n", counts.Matched, verb, counts.Published, counts.Skipped, counts.Failed)
	return err
}

// parseRate reads a rate of events a second: N or N/s; "" is 0 (unbounded).
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || r <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of events a second (100 or 100/s)", s)
	}
	return r, nil
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// dropOnReplay reports whether a header of an archived event is left out of its replay:
// JetStream's own (Nats-*, among them the sourcing stream's
// Nats-Stream-Source) and the replay markers, set anew.
func dropOnReplay(key string) bool {
	return strings.HasPrefix(key, "Nats-") || key == worker.HeaderReplay || key == worker.HeaderReplayFunction
}

// replayEvents reads the archive from opts.Since to opts.Until (or its end
// when it starts) and publishes every matching event again to the event
// stream, marked Trigger-Replay and, with opts.Function, targeted at that
// function. progress, when not nil, gets a progress bar. A failed publish
// is counted and the replay goes on; the error then names the first.
func replayEvents(ctx context.Context, js jetstream.JetStream, scheme subjects.Scheme, opts replayOptions, progress io.Writer) (c replayCounts, err error) {
	archive, err := js.Stream(ctx, scheme.ArchiveStream())
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return c, fmt.Errorf("no archive stream %s: no worker with archive.enabled has run with prefix %q on this NATS", scheme.ArchiveStream(), scheme.Prefix())
		}
		return c, fmt.Errorf("archive stream %s: %w", scheme.ArchiveStream(), err)
	}
	info, err := archive.Info(ctx)
	if err != nil {
		return c, fmt.Errorf("archive stream %s: %w", scheme.ArchiveStream(), err)
	}
	end := info.State.LastSeq // the replays are archived after it
	if info.State.Msgs == 0 {
		return c, nil
	}
	typ, option := opts.Type, opts.Option
	if typ == "" {
		typ = "*"
	}
	if option == "" {
		option = "*"
	}
	since := opts.Since
	cons, err := archive.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{scheme.Prefix() + "." + typ + "." + option},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return c, fmt.Errorf("read %s: %w", scheme.ArchiveStream(), err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return c, fmt.Errorf("read %s: %w", scheme.ArchiveStream(), err)
	}
	bar := newProgressBar(progress, ci.NumPending)
	defer bar.done()
	// The archive is read in batches the consumer pulls ahead, not a
	// fetch per event.
	it, err := cons.Messages()
	if err != nil {
		return c, fmt.Errorf("read %s: %w", scheme.ArchiveStream(), err)
	}
	defer it.Stop()
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // keeps two replays apart in the dedup window
	var first error
	// The replays go out asynchronously, at most replayWindow of them
	// waiting for their acks: a replay takes what the stream can store,
	// not a round trip per event. An event counts as published once its
	// ack is in.
	var waiting []inflightReplay
	ackWait := opts.AckWait
	if ackWait <= 0 {
		ackWait = 10 * time.Second
	}
	settle := func(p inflightReplay) {
		if _, err := p.wait(ackWait); err != nil {
			c.Failed++
			if first == nil {
				first = fmt.Errorf("replay archived event %d to %s: %w", p.seq, p.subject, err)
			}
			return
		}
		c.Published++
	}
	settleAll := func() {
		for _, p := range waiting {
			settle(p)
		}
		waiting = nil
	}
	// An early return (the context ended, the archive cannot be read)
	// still counts the replays already sent.
	defer settleAll()
	for pending := ci.NumPending; pending > 0; {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			// Events may have aged out of the archive meanwhile.
			if ci, err = cons.Info(ctx); err != nil {
				return c, fmt.Errorf("read %s: %w", scheme.ArchiveStream(), err)
			}
			pending = ci.NumPending
			continue
		}
		if err != nil {
			return c, fmt.Errorf("read %s: %w", scheme.ArchiveStream(), err)
		}
		md, err := m.Metadata()
		if err != nil {
			return c, err
		}
		pending = md.NumPending
		if md.Sequence.Stream > end || !opts.Until.IsZero() && md.Timestamp.After(opts.Until) {
			break
		}
		c.Matched++
		bar.step(c.Matched)
		msg, ok := replayMsg(m, md, opts)
		if !ok {
			c.Skipped++
			continue
		}
		if opts.DryRun {
			c.Published++
			continue
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return c, err
			}
		}
		id := msg.Header.Get(worker.HeaderReplay) + ".replay." + run + "." + strconv.FormatUint(md.Sequence.Stream, 10)
		p := inflightReplay{seq: md.Sequence.Stream, subject: msg.Subject}
		p.ack, p.err = js.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(scheme.EventStream()))
		waiting = append(waiting, p)
		if len(waiting) >= replayWindow {
			settle(waiting[0])
			waiting = waiting[1:]
		}
	}
	settleAll()
	if c.Failed > 0 {
		return c, fmt.Errorf("%d of %d events not replayed; the first: %w", c.Failed, c.Matched-c.Skipped, first)
	}
	return c, nil
}

// replayWindow bounds the replays waiting for their acks.
const replayWindow = 256

// inflightReplay is a replay sent and not yet acknowledged: the archived
// event's sequence and subject, and the ack to come (or the error of the
// send).
type inflightReplay struct {
	ack     jetstream.PubAckFuture
	err     error
	seq     uint64
	subject string
}

// wait waits for the replay's ack. The JetStream context ends an ack that
// does not come within its publish timeout; after twice timeout, wait
// gives up on it itself.
func (p inflightReplay) wait(timeout time.Duration) (*jetstream.PubAck, error) {
	if p.err != nil {
		return nil, p.err
	}
	t := time.NewTimer(2 * timeout)
	defer t.Stop()
	select {
	case ack := <-p.ack.Ok():
		return ack, nil
	case err := <-p.ack.Err():
		return nil, err
	case <-t.C:
		return nil, fmt.Errorf("no ack within %s", 2*timeout)
	}
}

// replayMsg builds the replay of an archived event, false when it is not
// to be replayed.
func replayMsg(m jetstream.Msg, md *jetstream.MsgMetadata, opts replayOptions) (*nats.Msg, bool) {
	h := m.Headers()
	if h.Get(worker.HeaderReplay) != "" && !opts.IncludeReplays {
		return nil, false
	}
	if h.Get(subjects.HeaderOrigin) != "" {
		return nil, false // caused by a function: no function ran it
	}
	if s := h.Get(worker.HeaderSchedule); s != "" && opts.Function != "" && s != opts.Function {
		return nil, false // a tick of another function: the target would not run it
	}
	msg := nats.NewMsg(m.Subject())
	msg.Data = m.Data()
	for k, v := range h {
		if !dropOnReplay(k) {
			msg.Header[k] = slices.Clone(v)
		}
	}
	id := event.IDOf(m.Data())
	if id == "" {
		id = h.Get(subjects.HeaderMsgID)
	}
	if id == "" {
		id = md.Stream + "." + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	msg.Header.Set(worker.HeaderReplay, id)
	if opts.Function != "" {
		msg.Header.Set(worker.HeaderReplayFunction, opts.Function)
	}
	return msg, true
}

// progressBar draws "replay [####......] n/total" on a terminal.
type progressBar struct {
	w     io.Writer // nil: no bar
	total uint64
	last  time.Time
}

const progressWidth = 30

func newProgressBar(w io.Writer, total uint64) *progressBar {
	return &progressBar{w: w, total: max(total, 1)}
}

func (b *progressBar) step(n int) {
	if b.w == nil || time.Since(b.last) < 100*time.Millisecond && uint64(n) < b.total {
		return
	}
	b.last = time.Now()
	b.draw(uint64(n))
}

func (b *progressBar) draw(n uint64) {
	n = min(n, b.total)
	fill := int(n * progressWidth / b.total)
	fmt.Fprintf(b.w, "\rreplay [%s%s] %d/%d", strings.Repeat("#", fill), strings.Repeat(".", progressWidth-fill), n, b.total)
}

func (b *progressBar) done() {
	if b.w != nil && !b.last.IsZero() {
		fmt.Fprintln(b.w)
	}
}
