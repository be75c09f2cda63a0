package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	err := run(ctx, []string{"--quick", "--duration", "100ms", "--warmup", "20ms", "--idle-wait", "10ms", "--scale", "10,50", "--drain-events", "500"}, nil, &out, &errs)
	if err != nil {
		t.Fatalf("trigger-bench --quick: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	for _, want := range []string{"POST core", "POST durable", "POST durable drain", "PRE sequential", "PRE concurrent", "PRE Lua", "PRE no function", "matcher scale", "idle worker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output has no %q row:\n%s", want, out.String())
		}
	}
}

// TestProfiles: --cpuprofile writes a profile of the worker side and, for
// a PRE row, of the driver, for each run.
func TestProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server and worker-side processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out, errs bytes.Buffer
	err := run(ctx, []string{"--quick", "--scenarios", "pre-seq", "--duration", "100ms", "--warmup", "20ms", "--cpuprofile", dir}, nil, &out, &errs)
	if err != nil {
		t.Fatalf("trigger-bench: %v\nstderr:\n%s", err, errs.String())
	}
	for _, side := range []string{"raw", "ours"} {
		for _, name := range []string{"pre-seq-" + side + "-run1.pprof", "pre-seq-" + side + "-run1-driver.pprof"} {
			// A profile is a gzipped protocol buffer.
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err == nil {
				var n int64
				n, err = io.Copy(io.Discard, zr)
				if err == nil && n == 0 {
					err = errors.New("empty")
				}
			}
			if err != nil {
				t.Errorf("%s is not a profile: %v", name, err)
			}
			_ = f.Close()
		}
	}
}

// TestDocListsFlagsAndScenarios ties docs/benchmarks.md to the command:
// every flag has a row in its flag table, and the --scenarios row names
// every scenario.
func TestDocListsFlagsAndScenarios(t *testing.T) {
	doc, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	var usage bytes.Buffer
	if _, err := parseOptions([]string{"-h"}, &usage); err == nil {
		t.Fatal("-h parsed without the help error")
	}
	var flags int
	for line := range strings.Lines(usage.String()) {
		name, ok := strings.CutPrefix(line, "  -")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(strings.TrimSpace(name), " ")
		flags++
		if !strings.Contains(string(doc), "| `--"+name+"` |") {
			t.Errorf("docs/benchmarks.md has no row for --%s", name)
		}
	}
	if flags == 0 {
		t.Fatalf("no flags in the usage:\n%s", usage.String())
	}
	_, row, _ := strings.Cut(string(doc), "| `--scenarios` |")
	row, _, _ = strings.Cut(row, "\n")
	for _, s := range scenarioNames {
		if !strings.Contains(row, s) {
			t.Errorf("the --scenarios row of docs/benchmarks.md does not name %q: %s", s, row)
		}
	}
}
