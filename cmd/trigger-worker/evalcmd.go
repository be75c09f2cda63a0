package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/functest"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const evalLong = `Runs the configured functions of TYPE and OPTION on one event, without NATS, and
prints the PRE decision (as emit prints it) or each POST function's result.
EVENT is the event's JSON, @FILE for a file's content, or - for standard input.

The functions are those of the config (functions, scripts.dir), all or
nothing. With bundle.source: bundle they are those of the fleet's active
revision instead, as a worker in bundle mode serves them: eval then connects
to NATS (the connection flags) only to read that revision from the function
store; the functions still run without NATS.`

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "eval TYPE OPTION EVENT|@file|-",
		Short:             "Run the configured functions on one event without NATS",
		Long:              evalLong,
		Args:              argsError("TYPE OPTION EVENT", cobra.ExactArgs(3)),
		ValidArgsFunction: completeTypes,
	}
	cf := addCommonFlags(cmd, true, "prefix", "scripts-dir", "log-level", "embedded-listen")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "how long the functions may run in all (and, in bundle mode, the reading of the revision)")
	out := addOutputFlag(cmd)
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return runEval(cmd.Context(), cf, *timeout, *out, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// runEval runs the configured functions on one event, without NATS, and
// prints the PRE decision or the POST functions' results.
func runEval(ctx context.Context, cf *commonFlags, timeout time.Duration, out outputFormat, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	typ, option := args[0], args[1]
	if _, err := subjects.Lookup(typ); err != nil {
		return &usageError{err}
	}
	data, err := readEventArg(args[2], stdin)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var l *loaded
	var rev uint64
	if cfg.Bundle.Source == config.SourceBundle {
		var dir string
		var problems []error
		if l, dir, rev, problems, err = activeRevision(ctx, cf, cfg, timeout, log); err != nil {
			return err
		}
		if len(problems) > 0 {
			// Refused here as a worker would refuse it: a runtime failure.
			writeProblems(stderr, problems)
			return fmt.Errorf("bundle revision %d does not load on this host (the problems above): a worker would refuse it too", rev)
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(stderr, "eval: the functions of bundle revision %d (bundle.source: bundle)\n", rev)
	} else {
		l = loadFunctions(cfg, log, nil)
	}
	defer l.close()
	if len(l.problems) > 0 {
		writeProblems(stderr, l.problems)
		return &usageError{errQuiet}
	}
	off, err := worker.NewOffline(worker.OfflineConfig{Prefix: cfg.Subjects.Prefix, MaxEventBytes: cfg.Delivery.MaxEventBytes, Logger: log}, l.functions()...)
	if err != nil {
		return &usageError{err}
	}
	ev, err := functest.Eval(ctx, off, cfg.Subjects.Prefix, typ, option, data)
	if err != nil {
		return &usageError{err}
	}
	if ev.Decision != nil && len(ev.Decision.Functions) > 0 {
		ev.Decision.Revision = rev // as a worker serving the revision replies
	}
	switch out {
	case "json":
		return functest.WriteEvalJSON(stdout, ev)
	case "yaml":
		var doc any = ev
		if ev.Decision != nil {
			doc = ev.Decision
		}
		return encode(stdout, out, doc)
	}
	return functest.WriteEvalText(stdout, ev)
}

// activeRevision loads the functions of the fleet's active revision, as a
// worker with bundle.source: bundle would: it connects only to read the
// revision. problems are those of a revision that does not load here
// (nothing loaded); else the caller closes the functions and removes dir,
// where the revision's files are.
func activeRevision(ctx context.Context, cf *commonFlags, cfg config.Config, timeout time.Duration, log *slog.Logger) (l *loaded, dir string, rev uint64, problems []error, err error) {
	st, _, done, err := openStore(ctx, cf, timeout, false)
	if err != nil {
		return nil, "", 0, nil, err
	}
	defer done()
	if rev, err = st.Active(ctx); err != nil {
		return nil, "", 0, nil, err
	}
	if rev == 0 {
		return nil, "", 0, nil, errors.New("bundle.source is bundle and no revision of the function bundle is active (trigger-worker functions push, activate)")
	}
	l, dir, problems = loadRevision(ctx, st, rev, cfg, log, nil)
	return l, dir, rev, problems, nil
}
