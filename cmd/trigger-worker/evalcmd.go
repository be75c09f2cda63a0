package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/triggerbus/triggerbus/internal/functest"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// runEval runs the configured functions on one event, without NATS, and
// prints the PRE decision or the POST functions' results.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("eval", stderr)
	output := cf.fs.String("o", "text", "output: text or json")
	timeout := cf.fs.Duration("timeout", 5*time.Second, "how long the functions may run in all")
	cf.fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trigger-worker eval [flags] TYPE OPTION EVENT\n\nEVENT is the event's JSON, @FILE or - (standard input).")
		cf.fs.PrintDefaults()
	}
	pos, err := parseInterspersed(cf, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		cf.fs.Usage()
		return usagef("eval takes TYPE OPTION EVENT")
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	typ, option := pos[0], pos[1]
	if _, err := subjects.Lookup(typ); err != nil {
		return &usageError{err}
	}
	data, err := readEvent(pos[2])
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	l := loadFunctions(cfg, log, nil)
	defer l.close()
	if len(l.problems) > 0 {
		writeProblems(stderr, l.problems)
		return &usageError{errQuiet}
	}
	off, err := worker.NewOffline(worker.OfflineConfig{Prefix: cfg.Subjects.Prefix, MaxEventBytes: cfg.Delivery.MaxEventBytes, Logger: log}, l.functions()...)
	if err != nil {
		return &usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ev, err := functest.Eval(ctx, off, cfg.Subjects.Prefix, typ, option, data)
	if err != nil {
		return &usageError{err}
	}
	if *output == "json" {
		return functest.WriteEvalJSON(stdout, ev)
	}
	return functest.WriteEvalText(stdout, ev)
}

// readEvent reads EVENT: JSON, @FILE or - for standard input.
func readEvent(arg string) ([]byte, error) {
	if arg == "-" {
		data, err := io.ReadAll(os.Stdin)
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
