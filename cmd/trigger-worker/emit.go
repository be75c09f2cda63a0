package main

import (
	"context"
	"encoding/json"
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
		Use:   "emit TYPE OPTION [JSON|@file]",
		Short: "Publish a POST event or ask for a PRE decision and print the reply as JSON",
		Args:  argsError("TYPE OPTION [JSON|@file]", cobra.RangeArgs(2, 3)),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			var names []string
			for _, t := range subjects.Types() {
				names = append(names, t.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
	cf := addCommonFlags(cmd, true, "prefix", "embedded-listen")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "how long to wait for a PRE decision")
	durable := cmd.Flags().Bool("durable", false, "publish POST events through JetStream and wait for the stream's ack")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return runEmit(cmd.Context(), cf, *timeout, *durable, args, cmd.OutOrStdout())
	})
	return cmd
}

// runEmit publishes a POST event or asks for a PRE decision and prints the
// outcome as JSON.
func runEmit(ctx context.Context, cf *commonFlags, timeout time.Duration, durable bool, rest []string, stdout io.Writer) error {
	typ, option := rest[0], rest[1]
	t, err := subjects.Lookup(typ)
	if err != nil {
		return &usageError{err: err}
	}
	ev := &event.Event{}
	if len(rest) == 3 {
		data := []byte(rest[2])
		if name, ok := strings.CutPrefix(rest[2], "@"); ok {
			if data, err = os.ReadFile(name); err != nil {
				return usagef("event file: %w", err)
			}
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
	c, err := client.New(nc, client.Options{Prefix: cfg.Subjects.Prefix, Durable: durable})
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
