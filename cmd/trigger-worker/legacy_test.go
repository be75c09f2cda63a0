package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// runSample is a command in the style of the functions legacyCmd
// registers: it parses its own flags.
func runSample(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("sample", stderr)
	timeout := cf.fs.Duration("timeout", time.Second, "a bound")
	output := cf.fs.String("o", "table", "output")
	pos, err := parseInterspersed(cf, args)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%v %s %v %s\n", *timeout, *output, pos, cfg.NATS.URL)
	return nil
}

// TestLegacyCmd: a command that parses its own flags, registered with
// legacyCmd, takes flags anywhere (Go flag spellings included), exits 0 on
// -h, 2 on an unknown flag, and reads the NATS flags.
func TestLegacyCmd(t *testing.T) {
	t.Setenv("NATS_URL", "")
	t.Setenv("NATS_CONTEXT", "")
	exec := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		root := newRootCmd(&out, &errOut)
		root.AddCommand(legacyCmd("sample [flags] ARGS", "a sample", runSample))
		err := execute(context.Background(), root, args)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := exec("sample", "a", "-o", "json", "-timeout", "5s", "b", "--server", "nats://127.0.0.1:1")
	if err != nil || out != "5s json [a b] nats://127.0.0.1:1\n" {
		t.Errorf("sample: %q, %v\n%s", out, err, errOut)
	}
	if _, errOut, err := exec("sample", "-h"); err != nil || !strings.Contains(errOut, "--timeout") {
		t.Errorf("sample -h: %v, want exit 0 and the flags\n%s", err, errOut)
	}
	if _, errOut, err := exec("sample", "--nope"); exitCode(err) != 2 || !strings.Contains(err.Error(), "unknown flag: --nope") || errOut != "" {
		t.Errorf("sample --nope: %v, want a usage error and no usage page\n%s", err, errOut)
	}
	var errOut2 bytes.Buffer
	report(&errOut2, func() error { _, _, err := exec("sample", "--nope"); return err }())
	if got := errOut2.String(); got != "trigger-worker: unknown flag: --nope\nRun 'trigger-worker sample --help' for usage.\n" {
		t.Errorf("sample --nope reported as %q", got)
	}
}
