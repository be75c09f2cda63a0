package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// This file keeps commands written before the command tree working: a
// function run(ctx, args, stdout, stderr) error that parses its own flags
// with newCommonFlags. Register one with legacyCmd in newRootCmd; port it
// to a newXxxCmd constructor (docs/cli.md, "Adding a command") to give it
// per-command help, completion and the README's flag list.

// errHelp is what a command that parses its own flags returns when it has
// printed its usage for -h or --help: exit 0.
var errHelp = errors.New("help printed")

// legacyCmd registers run, a command that parses its own arguments, under
// use ("replay [flags] SEQ"). Its flags are its own: the tree shows none.
func legacyCmd(use, short string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
}

// newCommonFlags is the flag set of a command that parses its own
// arguments: the config file, every key override and the NATS flags.
func newCommonFlags(name string, stderr io.Writer) *commonFlags {
	cmd := &cobra.Command{Use: name}
	cmd.Flags().SetOutput(stderr)
	c := addCommonFlags(cmd, true, "all")
	c.fs.Init(name, pflag.ContinueOnError)
	return c
}

// parse parses args, flags anywhere among the arguments (the positional
// ones are then c.fs.Args()). Single-dash long flags (-timeout 5s) and
// one-letter flags declared by name (String("o", ...)) are read as the
// standard flag package reads them.
//
// -h or --help prints the usage (c.fs.Usage, else the flags) and returns
// errHelp; a bad flag is a usage error that prints no usage page.
func (c *commonFlags) parse(args []string) error {
	usage, out := c.fs.Usage, c.fs.Output()
	c.fs.Usage = func() {}
	c.fs.SetOutput(io.Discard) // pflag prints bad flags itself
	err := c.fs.Parse(goFlagArgs(c.fs, args))
	c.fs.Usage = usage
	c.fs.SetOutput(out)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(out, "usage of %s:\n", c.fs.Name())
			c.fs.PrintDefaults()
		}
		return errHelp
	case err != nil:
		return &usageError{err: err}
	}
	return nil
}

// goFlagArgs rewrites -name to --name for the flags of fs that pflag
// would otherwise read as shorthands.
func goFlagArgs(fs *pflag.FlagSet, args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || len(a) < 2 {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if fs.Lookup(name) != nil && (len(name) > 1 || fs.ShorthandLookup(name) == nil) {
			out[i] = "-" + a
		}
	}
	return out
}

// parseInterspersed parses args and returns the positional arguments:
// pflag reads flags wherever they stand.
func parseInterspersed(cf *commonFlags, args []string) ([]string, error) {
	if err := cf.parse(args); err != nil {
		return nil, err
	}
	return cf.fs.Args(), nil
}

// subcommand sets the usage text of a command with subcommands, parses its
// flags and returns the subcommand and the arguments after it; commands
// lists the subcommands for the error when none is given.
func subcommand(cf *commonFlags, usage, commands string, args []string, stderr io.Writer) (string, []string, error) {
	cf.fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		cf.fs.PrintDefaults()
	}
	pos, err := parseInterspersed(cf, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) == 0 {
		cf.fs.Usage()
		return "", nil, usagef("%s takes a command: %s", cf.fs.Name(), commands)
	}
	return pos[0], pos[1:], nil
}
