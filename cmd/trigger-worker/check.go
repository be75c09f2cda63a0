package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// runCheck loads the config and the scripts and prints every function with
// its subjects, then every problem; any problem means exit 2.
func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("check", stderr)
	known := cf.fs.Bool("known-options", false, "also list the catalogue's known options of each trigger type")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	scheme, err := subjects.NewScheme(cfg.Subjects.Prefix)
	if err != nil {
		return usagef("subjects.prefix: %w", err)
	}
	l := loadFunctions(cfg, slog.New(slog.DiscardHandler), nil)
	defer l.close()

	src := cfg.File
	if src == "" {
		src = "(no config file: defaults)"
	}
	fmt.Fprintf(stdout, "config: %s\n", src)
	if cfg.Scripts.Dir != "" {
		fmt.Fprintf(stdout, "scripts: %s\n", relPath(cfg.Scripts.Dir))
	}
	entries := l.set.Entries()
	fmt.Fprintf(stdout, "functions: %d\n\n", len(entries))
	if len(entries) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REF\tKIND\tTYPE\tOPTIONS\tPRIORITY\tPOLICY\tSCHEDULE\tSOURCE\tSUBJECTS")
		for _, e := range entries {
			policy := "-"
			if e.Type.IsPre() {
				policy = string(e.FailurePolicy) + "/" + string(e.Mode)
			}
			sched := "-"
			if sc := e.Schedule; sc != nil {
				sched = sc.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Ref, l.kinds[e.Ref], e.Type.Name,
				strings.Join(e.Options, ","), e.Priority, policy, sched, e.Source, strings.Join(l.set.Subjects(e, scheme), " "))
		}
		tw.Flush()
		pre, post := l.set.Subscriptions(scheme)
		fmt.Fprintf(stdout, "\nsubscriptions (queue %s):\n", cfg.Subjects.Queue)
		for _, s := range pre {
			fmt.Fprintf(stdout, "  %s (PRE, request-reply)\n", s)
		}
		for _, s := range post {
			fmt.Fprintf(stdout, "  %s (POST)\n", s)
		}
	}
	if *known {
		fmt.Fprintln(stdout, "\ncatalogue:")
		for _, t := range subjects.Types() {
			closed := "open"
			if t.OptionKind.Closed() {
				closed = "closed"
			}
			fmt.Fprintf(stdout, "  %s %s %s (%s): %s\n", t.Name, t.Phase, t.OptionKind, closed, strings.Join(t.KnownOptions(), " "))
		}
	}
	if len(entries) == 0 {
		fmt.Fprintln(stdout, "\nwarning: "+noFunctionsWarning)
	}
	if cfg.Loop.Key == "" {
		fmt.Fprintln(stdout, "\nwarning: loop.key is not set: any Trigger-Origin header is honoured, so a publisher can silence triggers by forging one")
	}
	if len(l.problems) == 0 {
		fmt.Fprintln(stdout, "\nno problems")
		return nil
	}
	writeProblems(stderr, l.problems)
	if cfg.Loading.AllowPartial {
		fmt.Fprintln(stderr, "\nloading.allow_partial is set: run would serve the functions without problems")
	}
	return &usageError{errQuiet}
}
