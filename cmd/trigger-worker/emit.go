package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func newEmitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emit TYPE OPTION [JSON|@file|-]",
		Short: "Publish a POST event or ask for a PRE decision and print the reply as JSON",
		Long: `Publishes a POST event, or asks for a PRE decision, and prints the reply as JSON.
The event is the JSON argument, @FILE for a file's content, or - for standard
input; without it the event is {}.`,
		Args:              argsError("TYPE OPTION [JSON|@file|-]", cobra.RangeArgs(2, 3)),
		ValidArgsFunction: completeTypes,
	}
	cf := addCommonFlags(cmd, true, "prefix", "embedded-listen")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "how long to wait for a PRE decision")
	durable := cmd.Flags().Bool("durable", false, "publish POST events through JetStream and wait for the stream's ack")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return runEmit(cmd.Context(), cf, *timeout, *durable, args, cmd.InOrStdin(), cmd.OutOrStdout())
	})
	return cmd
}

// completeTypes completes the first argument (emit, eval) or a flag of a
// command without arguments (replay --type) with the trigger types; the
// later arguments complete as files.
func completeTypes(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var names []string
	for _, t := range subjects.Types() {
		names = append(names, t.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// readEventArg reads the event argument of emit and eval: the JSON itself,
// @FILE for the content of FILE, or - for stdin.
func readEventArg(arg string, stdin io.Reader) ([]byte, error) {
	if arg == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("event from standard input: %w", err)
		}
		return data, nil
	}
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, usagef("event file: %w", err)
		}
		return data, nil
	}
	return []byte(arg), nil
}

// runEmit publishes a POST event or asks for a PRE decision and prints the
// outcome as JSON.
func runEmit(ctx context.Context, cf *commonFlags, timeout time.Duration, durable bool, rest []string, stdin io.Reader, stdout io.Writer) error {
	typ, option := rest[0], rest[1]
	t, err := subjects.Lookup(typ)
	if err != nil {
		return &usageError{err: err}
	}
	ev := &event.Event{}
	if len(rest) == 3 {
		data, err := readEventArg(rest[2], stdin)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, ev); err != nil {
			return usagef("event JSON: %w", err)
		}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	nc, err := connectTool(cfg.NATS, "trigger-worker emit")
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := client.New(nc, emitClientOptions(cfg.Subjects.Prefix, durable))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if t.IsPre() {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		d, err := c.Decide(ctx, typ, option, ev)
		if err != nil {
			return &usageError{err: err}
		}
		return enc.Encode(d)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id, err := c.Publish(pctx, typ, option, ev)
	if err != nil {
		return &usageError{err: err}
	}
	if err := nc.FlushWithContext(pctx); err != nil {
		return err
	}
	subject, _ := subjects.NewScheme(cfg.Subjects.Prefix)
	return enc.Encode(map[string]string{"id": id, "subject": subject.Pattern(typ, option)})
}

// emitClientOptions are the options of emit's client. It sends one event:
// a watched copy of the PRE registry would cost more requests than the
// one decision it could save, so it has none.
func emitClientOptions(prefix string, durable bool) client.Options {
	return client.Options{Prefix: prefix, Durable: durable, NoRegistryWatch: true}
}
