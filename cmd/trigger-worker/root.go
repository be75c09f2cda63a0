package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/config"
)

// newRootCmd builds the command tree. Every command is registered here,
// each built by its newXxxCmd constructor in its own file.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "trigger-worker",
		Short: "Run triggerbus trigger functions for the events an orchestrator publishes on NATS",
		Long: `trigger-worker runs triggerbus trigger functions for the events an orchestrator
publishes on NATS, and holds the tools to inspect and operate a fleet of workers.
With no command it runs the worker: "trigger-worker -c FILE" is "trigger-worker run -c FILE".

Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.`,
		Version:       version + " (" + revision + ")",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("trigger-worker {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(
		newRunCmd(),
		newCheckCmd(),
		newEmitCmd(),
		newDLQCmd(),
		newDecisionsCmd(),
		newRegistryCmd(),
		newFunctionsCmd(),
		newVersionCmd(),
		newSchemaCmd(),
		newTestCmd(),
		newReplayCmd(),
		newEvalCmd(),
	)
	root.InitDefaultCompletionCmd() // here rather than at Execute, so that the tree is whole
	return root
}

// run is the whole program: it runs the command args name. With no
// command, or flags only, the command is run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return execute(ctx, newRootCmd(stdout, stderr), args)
}

// execute runs the command of root that args name, and makes its error
// one that main reports with the right exit code.
func execute(ctx context.Context, root *cobra.Command, args []string) error {
	root.SetArgs(defaultCommand(args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var ue *usageError
	if !errors.As(err, &ue) && !started(cmd) {
		// Cobra's own errors (an unknown command, a wrong number of
		// arguments) come before the command starts: bad usage.
		err = &usageError{err: err}
	}
	// Bad usage gets the line that says where the usage is; problems of
	// the configuration, already listed or joined, do not.
	if errors.As(err, &ue) && !errors.Is(err, errQuiet) && !errors.Is(err, config.ErrInvalid) && cmd != nil {
		err = &hintError{err: err, hint: fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())}
	}
	return err
}

// defaultCommand puts "run" in front of args that name no command.
func defaultCommand(args []string) []string {
	if len(args) == 0 {
		return []string{"run"}
	}
	if strings.HasPrefix(args[0], "-") && !slices.Contains([]string{"-h", "--help", "--version", "-v"}, args[0]) {
		return append([]string{"run"}, args...)
	}
	return args
}

// startedKey is the annotation runE sets on a command whose RunE began.
const startedKey = "trigger-worker/started"

// started reports whether cmd's RunE began (see runE).
func started(cmd *cobra.Command) bool {
	return cmd != nil && cmd.Annotations[startedKey] == "yes"
}

// runE adapts f to cobra: it marks the command started, so that an error
// before (flags, arguments) is a usage error and one after is whatever f
// says.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if cmd.Annotations == nil {
			cmd.Annotations = map[string]string{}
		}
		cmd.Annotations[startedKey] = "yes"
		return f(cmd, args)
	}
}

// argsError wraps the check of a command's arguments so that its error is
// a usage error naming them.
func argsError(what string, check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usagef("%s takes %s (got %d argument(s))", cmdName(cmd), what, len(args))
		}
		return nil
	}
}

// cmdName is the path of cmd without the program's name: "dlq ls".
func cmdName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// groupCmd is a command that only holds subcommands (dlq, registry,
// functions): run alone or with an unknown subcommand it is bad usage.
func groupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, 0, len(cmd.Commands()))
			for _, s := range cmd.Commands() {
				if s.IsAvailableCommand() {
					names = append(names, s.Name())
				}
			}
			if len(args) == 0 {
				return usagef("%s takes a command: %s", cmdName(cmd), strings.Join(names, ", "))
			}
			return usagef("unknown %s command %q (commands: %s)", cmdName(cmd), args[0], strings.Join(names, ", "))
		},
	}
	c.AddCommand(subs...)
	return c
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  argsError("no arguments", cobra.NoArgs),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "trigger-worker %s (%s)\n", version, revision)
			return nil
		}),
	}
}
