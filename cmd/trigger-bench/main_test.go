package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bench's child processes: the
// bench starts os.Executable() with a hidden subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "__") {
		if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "trigger-bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick runs every scenario briefly, so that the harness cannot rot. It
// checks that each delivers events and that the table is printed, never how
// fast.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server and a dozen processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	err := run(ctx, []string{"--quick", "--duration", "100ms", "--warmup", "20ms", "--idle-wait", "10ms", "--scale", "10,50"}, nil, &out, &errs)
	if err != nil {
		t.Fatalf("trigger-bench --quick: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	for _, want := range []string{"POST core", "POST durable", "PRE sequential", "PRE concurrent", "PRE Lua", "PRE no function", "matcher scale", "idle worker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output has no %q row:\n%s", want, out.String())
		}
	}
}
