package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/functest"
)

const testLong = `Runs the offline tests of trigger functions, no NATS needed: the *_test.yaml
files of each PATH (a file or a directory; default scripts.dir, else
config/scripts). Prints PASS or FAIL per case, with a diff for each failure
(-o table), or the report as one document (-o json or yaml); --junit also
writes it as JUnit XML. Exit 1 when a case fails, 2 for a bad test file.`

func newTestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test [PATH ...]",
		Short: "Run the offline tests (*_test.yaml) of trigger functions",
		Long:  testLong,
		Args:  cobra.ArbitraryArgs,
	}
	cf := addCommonFlags(cmd, false, "prefix", "scripts-dir")
	junit := cmd.Flags().String("junit", "", "also write the report as JUnit XML to `FILE`")
	out := addOutputFlag(cmd)
	cmd.RunE = runE(func(cmd *cobra.Command, paths []string) error {
		return runTest(cmd.Context(), cf, *out, *junit, paths, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// runTest runs the offline tests of trigger functions: the *_test.yaml
// files of the paths (default: scripts.dir, else config/scripts). Exit 1
// when a case fails, 2 when a test file is bad.
func runTest(ctx context.Context, cf *commonFlags, out outputFormat, junit string, paths []string, stdout, stderr io.Writer) error {
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
	switch out {
	case "json":
		err = functest.WriteJSON(stdout, rep)
	case "yaml":
		err = encode(stdout, out, rep)
	default:
		err = functest.WriteText(stdout, rep)
	}
	if err != nil {
		return err
	}
	if junit != "" {
		f, err := os.Create(junit)
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
