package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/functest"
)

// runTest runs the offline tests of trigger functions: the *_test.yaml
// files of the paths (default: scripts.dir, else config/scripts). Exit 1
// when a case fails, 2 when a test file is bad.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("test", stderr)
	output := cf.fs.String("o", "text", "output: text or json")
	junit := cf.fs.String("junit", "", "also write the report as JUnit XML to `FILE`")
	cf.fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trigger-worker test [flags] [PATH ...]\n\nRuns the *_test.yaml files of each PATH (a file or a directory; default scripts.dir, else config/scripts).")
		cf.fs.PrintDefaults()
	}
	paths, err := parseInterspersed(cf, args)
	if err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{cfg.Scripts.Dir}
		if cfg.Scripts.Dir == "" {
			paths = []string{"config/scripts"}
		}
	}
	files, err := functest.Find(paths)
	if err != nil {
		return &usageError{err}
	}
	if len(files) == 0 {
		return usagef("no test files (*%s) in %v", functest.Suffix, paths)
	}
	// The tests send no mail: the harness records it.
	cfg.Email = config.Email{}
	luaOpts, err := luaOptions(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return &usageError{err}
	}
	rep, err := functest.Run(ctx, functest.Config{Lua: luaOpts, Functions: scriptFunctions, Prefix: cfg.Subjects.Prefix}, files)
	if err != nil {
		writeProblems(stderr, splitJoined(err))
		return &usageError{errQuiet}
	}
	if *output == "json" {
		err = functest.WriteJSON(stdout, rep)
	} else {
		err = functest.WriteText(stdout, rep)
	}
	if err != nil {
		return err
	}
	if *junit != "" {
		f, err := os.Create(*junit)
		if err != nil {
			return err
		}
		err = functest.WriteJUnit(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("junit: %w", err)
		}
	}
	if rep.Failed > 0 {
		return errQuiet
	}
	return nil
}
