package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const registryLong = `The PRE registry is the JetStream key-value bucket <PREFIX>_REGISTRY in which
every worker records, under its instance name, the PRE subjects it has
functions for. When no worker answers a PRE request, the SDK reads it: a
subject with a registration is refused (NO_WORKER), one without is allowed
(NO_TRIGGER). Registrations never expire and stay when workers stop; running
workers rewrite their last-seen time every registry.refresh.`

func newRegistryCmd() *cobra.Command {
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the registrations: subject, instance, functions, last seen, and whether the instance answers now",
		Args:  argsError("no arguments", cobra.NoArgs),
	}
	lsCF := addCommonFlags(ls, true, "prefix", "embedded-listen")
	lsTimeout := ls.Flags().Duration("timeout", 10*time.Second, "bound of each JetStream request")
	discover := ls.Flags().Duration("discover", time.Second, "how long to wait for workers answering service discovery ($SRV.PING); 0 skips it")
	service := ls.Flags().String("service", worker.DefaultServiceName, "the workers' NATS service name")
	output := addOutputFlag(ls)
	ls.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		return withRegistry(cmd.Context(), lsCF, *lsTimeout, func(kv jetstream.KeyValue, nc *nats.Conn, scheme subjects.Scheme) error {
			return listRegistry(cmd.Context(), kv, nc, scheme, *service, *discover, *output, cmd.OutOrStdout())
		})
	})

	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the registrations of gone instances (--older-than D, --instance NAME, or both)",
		Long: `Removes registrations: --older-than D (last seen more than D ago), --instance NAME,
or both. The last registration of a subject stays unless --force, so that a
prune never turns a refusal into an allow; with --force, which does, it shows
what would go and asks for confirmation on a terminal. --dry-run shows what
would go and changes nothing.`,
		Args: argsError("no arguments", cobra.NoArgs),
	}
	pruneCF := addCommonFlags(prune, true, "prefix", "embedded-listen")
	pruneTimeout := prune.Flags().Duration("timeout", 10*time.Second, "bound of each JetStream request")
	olderThan := prune.Flags().Duration("older-than", 0, "registrations last seen more than this long ago")
	instance := prune.Flags().String("instance", "", "the registrations of this instance ("+worker.LegacyInstance+" for those of workers without instance names)")
	force := prune.Flags().Bool("force", false, "also remove the last registration of a subject (it then answers NO_TRIGGER, allowed, when no worker answers)")
	dryRun := prune.Flags().Bool("dry-run", false, "print what would be removed, change nothing")
	prune.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if *olderThan < 0 {
			return usagef("registry prune: --older-than %v is negative", *olderThan)
		}
		if *olderThan == 0 && *instance == "" {
			return usagef("registry prune needs --older-than, --instance or both")
		}
		return withRegistry(cmd.Context(), pruneCF, *pruneTimeout, func(kv jetstream.KeyValue, _ *nats.Conn, scheme subjects.Scheme) error {
			var before time.Time
			if *olderThan > 0 {
				before = time.Now().Add(-*olderThan)
			}
			opts := worker.PruneOptions{Instance: *instance, Before: before, Force: *force, DryRun: *dryRun}
			if *force && !*dryRun && isTerminal(os.Stdin) {
				dry := opts
				dry.DryRun = true
				res, err := worker.PruneRegistry(cmd.Context(), kv, dry)
				printPrune(cmd.OutOrStdout(), scheme, res, true)
				if err != nil {
					return err
				}
				if !confirm(cmd.ErrOrStderr(), "Remove these registrations, the last of their subjects included?") {
					return fmt.Errorf("registry prune: not confirmed: nothing removed")
				}
			}
			res, err := worker.PruneRegistry(cmd.Context(), kv, opts)
			printPrune(cmd.OutOrStdout(), scheme, res, *dryRun)
			return err
		})
	})
	return groupCmd("registry", "List the PRE registry's registrations by worker instance, remove those of gone instances", registryLong, ls, prune)
}

// withRegistry connects as cf says and calls f with the registry bucket.
func withRegistry(ctx context.Context, cf *commonFlags, timeout time.Duration, f func(jetstream.KeyValue, *nats.Conn, subjects.Scheme) error) error {
	scheme, nc, js, err := toolJetStream(cf, "trigger-worker registry", timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := js.KeyValue(ctx, scheme.RegistryBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("no registry bucket %s: no worker with JetStream has run with prefix %q on this NATS", scheme.RegistryBucket(), scheme.Prefix())
	}
	if err != nil {
		return fmt.Errorf("registry bucket %s: %w", scheme.RegistryBucket(), err)
	}
	return f(kv, nc, scheme)
}

// registrySubject is the subject a registry key stands for, such as
// trigger.PRE_CREATE.SERVER or trigger.PRE_AUTH.* (ANY).
func registrySubject(scheme subjects.Scheme, key string) string {
	typ, option, ok := strings.Cut(key, ".")
	if !ok {
		return key
	}
	return scheme.Pattern(typ, option)
}

// lastSeen formats a registration's last-seen time with its age.
func lastSeen(t, now time.Time) string {
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
}

func listRegistry(ctx context.Context, kv jetstream.KeyValue, nc *nats.Conn, scheme subjects.Scheme, service string, wait time.Duration, format outputFormat, out io.Writer) error {
	regs, err := worker.ListRegistry(ctx, kv)
	if err != nil {
		return err
	}
	if len(regs) == 0 && format == "table" {
		fmt.Fprintf(out, "no registrations in %s: every PRE subject answers NO_TRIGGER (allowed) when no worker answers\n", kv.Bucket())
		return nil
	}
	live, derr := answering(nc, service, scheme.Prefix(), wait)
	if format != "table" {
		list := []registration{}
		for _, r := range regs {
			reg := registration{Subject: registrySubject(scheme, r.Key), Key: r.Key, Instance: r.Instance, Functions: r.Functions, LastSeen: r.LastSeen.UTC()}
			if reg.Functions == nil {
				reg.Functions = []string{}
			}
			if r.Instance != worker.LegacyInstance && live != nil {
				answers := live[r.Instance]
				reg.Answering = &answers
			}
			list = append(list, reg)
		}
		return encode(out, format, list)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tINSTANCE\tFUNCTIONS\tLAST SEEN\tANSWERING")
	instances, keys := map[string]bool{}, map[string]bool{}
	for _, r := range regs {
		state := "?"
		switch {
		case r.Instance == worker.LegacyInstance:
			state = "-"
		case live != nil && live[r.Instance]:
			state = "yes"
		case live != nil:
			state = "no"
		}
		instances[r.Instance], keys[r.Key] = true, true
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", registrySubject(scheme, r.Key), r.Instance,
			orDash(strings.Join(r.Functions, ",")), lastSeen(r.LastSeen, now), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d registrations of %d instances for %d subjects in %s\n", len(regs), len(instances), len(keys), kv.Bucket())
	switch {
	case derr != nil:
		fmt.Fprintf(out, "ANSWERING unknown: service discovery failed: %v\n", derr)
	case live == nil:
		fmt.Fprintln(out, "ANSWERING unknown: service discovery skipped (--discover 0)")
	}
	return nil
}

// registration is a registration as registry ls prints it with -o json
// or yaml (docs/cli.md).
type registration struct {
	Subject   string    `json:"subject"`
	Key       string    `json:"key"`
	Instance  string    `json:"instance"`
	Functions []string  `json:"functions"`
	LastSeen  time.Time `json:"last_seen"`
	// Answering is whether the instance answers service discovery now;
	// absent when unknown (discovery skipped or failed, or a registration
	// of a worker without an instance name).
	Answering *bool `json:"answering,omitempty"`
}

// answering returns the instance names of the workers of prefix that
// answer $SRV.PING.<service> within wait, or nil when wait is 0 or the
// ping fails.
func answering(nc *nats.Conn, service, prefix string, wait time.Duration) (map[string]bool, error) {
	if wait <= 0 {
		return nil, nil
	}
	sub, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$SRV.PING."+service, sub.Subject, nil); err != nil {
		return nil, err
	}
	if err := nc.FlushTimeout(wait + 5*time.Second); err != nil {
		return nil, err
	}
	if err := nc.LastError(); err != nil {
		return nil, err
	}
	live := map[string]bool{}
	deadline := time.Now().Add(wait)
	for left := wait; left > 0; left = time.Until(deadline) {
		m, err := sub.NextMsg(left)
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
			break // no more answers, or none at all
		}
		if err != nil {
			return nil, err
		}
		var ping struct {
			Metadata map[string]string `json:"metadata"`
		}
		if json.Unmarshal(m.Data, &ping) != nil || ping.Metadata["prefix"] != prefix {
			continue
		}
		if name := ping.Metadata["instance"]; name != "" {
			live[name] = true
		}
	}
	return live, nil
}

func printPrune(out io.Writer, scheme subjects.Scheme, res worker.PruneResult, dryRun bool) {
	now := time.Now()
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	removed := "removed"
	if dryRun {
		removed = "would remove"
	}
	for _, r := range res.Removed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tlast seen %s\n", removed, registrySubject(scheme, r.Key), r.Instance,
			orDash(strings.Join(r.Functions, ",")), lastSeen(r.LastSeen, now))
	}
	for _, r := range res.Kept {
		fmt.Fprintf(tw, "kept\t%s\t%s\t%s\tlast seen %s: the last registration of the subject (--force removes it)\n",
			registrySubject(scheme, r.Key), r.Instance, orDash(strings.Join(r.Functions, ",")), lastSeen(r.LastSeen, now))
	}
	_ = tw.Flush() // the writers of out report their own errors
	fmt.Fprintf(out, "%s %d registrations, kept %d as the last of their subject", removed, len(res.Removed), len(res.Kept))
	if dryRun {
		fmt.Fprint(out, " (dry run: nothing changed)")
	}
	fmt.Fprintln(out)
}
