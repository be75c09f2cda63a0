package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Load the config and scripts, print the functions and their subjects; exit 2 on any problem",
		Args:  argsError("no arguments", cobra.NoArgs),
	}
	cf := addCommonFlags(cmd, false, "prefix", "queue", "scripts-dir")
	known := cmd.Flags().Bool("known-options", false, "also list the catalogue's known options of each trigger type")
	out := addOutputFlag(cmd)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		return runCheck(cf, *known, *out, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// runCheck loads the config and the scripts and prints every function with
// its subjects, then every problem; any problem means exit 2.
func runCheck(cf *commonFlags, known bool, out outputFormat, stdout, stderr io.Writer) error {
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

	r := checkReport{Config: cfg.File, Functions: []checkFunction{}, Subscriptions: checkSubscriptions{Queue: cfg.Subjects.Queue, PRE: []string{}, POST: []string{}}, Warnings: []string{}, Problems: []string{}}
	if cfg.Scripts.Dir != "" {
		r.Scripts = relPath(cfg.Scripts.Dir)
	}
	for _, e := range l.set.Entries() {
		f := checkFunction{Ref: e.Ref, Kind: l.kinds[e.Ref], TriggerType: e.Type.Name, TriggerOptions: e.Options,
			Priority: e.Priority, Source: e.Source, Subjects: l.set.Subjects(e, scheme)}
		if e.Type.IsPre() {
			f.FailurePolicy, f.Mode = string(e.FailurePolicy), string(e.Mode)
		}
		if sc := e.Schedule; sc != nil {
			f.Schedule = sc.String()
		}
		r.Functions = append(r.Functions, f)
	}
	if len(r.Functions) > 0 {
		r.Subscriptions.PRE, r.Subscriptions.POST = l.set.Subscriptions(scheme)
	}
	if known {
		for _, t := range subjects.Types() {
			r.Catalogue = append(r.Catalogue, checkType{Name: t.Name, Phase: fmt.Sprint(t.Phase), OptionKind: fmt.Sprint(t.OptionKind),
				Closed: t.OptionKind.Closed(), KnownOptions: t.KnownOptions()})
		}
	}
	if len(r.Functions) == 0 {
		r.Warnings = append(r.Warnings, noFunctionsWarning)
	}
	if cfg.Loop.Key == "" {
		r.Warnings = append(r.Warnings, "loop.key is not set: any Trigger-Origin header is honoured, so a publisher can silence triggers by forging one")
	}
	for _, p := range l.problems {
		r.Problems = append(r.Problems, p.Error())
	}
	r.AllowPartial = cfg.Loading.AllowPartial
	if out != "table" {
		if err := encode(stdout, out, r); err != nil {
			return err
		}
	} else {
		r.print(stdout)
	}
	if len(l.problems) == 0 {
		return nil
	}
	if out == "table" {
		writeProblems(stderr, l.problems)
		if cfg.Loading.AllowPartial {
			fmt.Fprintln(stderr, "\nloading.allow_partial is set: run would serve the functions without problems")
		}
	}
	return &usageError{err: errQuiet}
}

// checkReport is what check prints: with -o json or yaml, this document
// (docs/cli.md).
type checkReport struct {
	Config        string             `json:"config"` // "" when no file was read
	Scripts       string             `json:"scripts,omitempty"`
	Functions     []checkFunction    `json:"functions"`
	Subscriptions checkSubscriptions `json:"subscriptions"`
	Catalogue     []checkType        `json:"catalogue,omitempty"` // with --known-options
	Warnings      []string           `json:"warnings"`
	Problems      []string           `json:"problems"`
	AllowPartial  bool               `json:"allow_partial"`
}

type checkFunction struct {
	Ref            string   `json:"ref"`
	Kind           string   `json:"kind"`
	TriggerType    string   `json:"trigger_type"`
	TriggerOptions []string `json:"trigger_options"`
	Priority       int      `json:"priority"`
	FailurePolicy  string   `json:"failure_policy,omitempty"` // PRE only
	Mode           string   `json:"mode,omitempty"`           // PRE only
	Schedule       string   `json:"schedule,omitempty"`
	Source         string   `json:"source"`
	Subjects       []string `json:"subjects"`
}

type checkSubscriptions struct {
	Queue string   `json:"queue"`
	PRE   []string `json:"pre"`
	POST  []string `json:"post"`
}

type checkType struct {
	Name         string   `json:"name"`
	Phase        string   `json:"phase"`
	OptionKind   string   `json:"option_kind"`
	Closed       bool     `json:"closed"`
	KnownOptions []string `json:"known_options"`
}

// print writes r as the table check prints by default.
func (r *checkReport) print(stdout io.Writer) {
	src := r.Config
	if src == "" {
		src = "(no config file: defaults)"
	}
	fmt.Fprintf(stdout, "config: %s\n", src)
	if r.Scripts != "" {
		fmt.Fprintf(stdout, "scripts: %s\n", r.Scripts)
	}
	fmt.Fprintf(stdout, "functions: %d\n\n", len(r.Functions))
	if len(r.Functions) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REF\tKIND\tTYPE\tOPTIONS\tPRIORITY\tPOLICY\tSCHEDULE\tSOURCE\tSUBJECTS")
		for _, f := range r.Functions {
			policy := "-"
			if f.FailurePolicy != "" {
				policy = f.FailurePolicy + "/" + f.Mode
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", f.Ref, f.Kind, f.TriggerType,
				strings.Join(f.TriggerOptions, ","), f.Priority, policy, orDash(f.Schedule), f.Source, strings.Join(f.Subjects, " "))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "\nsubscriptions (queue %s):\n", r.Subscriptions.Queue)
		for _, s := range r.Subscriptions.PRE {
			fmt.Fprintf(stdout, "  %s (PRE, request-reply)\n", s)
		}
		for _, s := range r.Subscriptions.POST {
			fmt.Fprintf(stdout, "  %s (POST)\n", s)
		}
	}
	if len(r.Catalogue) > 0 {
		fmt.Fprintln(stdout, "\ncatalogue:")
		for _, t := range r.Catalogue {
			closed := "open"
			if t.Closed {
				closed = "closed"
			}
			fmt.Fprintf(stdout, "  %s %s %s (%s): %s\n", t.Name, t.Phase, t.OptionKind, closed, strings.Join(t.KnownOptions, " "))
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(stdout, "\nwarning: "+w)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(stdout, "\nno problems")
	}
}
