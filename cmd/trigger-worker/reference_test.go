package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/triggerbus/triggerbus/internal/functest"
	"github.com/triggerbus/triggerbus/pkg/event"
)

var update = flag.Bool("update", false, "rewrite README.md's command reference from the command tree")

const (
	referenceBegin = "<!-- commands: generated from the command tree; go test ./cmd/trigger-worker -run TestREADMECommandReference -update -->\n"
	referenceEnd   = "<!-- end of commands -->\n"
)

// connectionFlags are the flags every command that connects to NATS has;
// the reference names them once.
var connectionFlags = []string{"server", "creds", "nkey", "tlsca", "tlscert", "tlskey", "context"}

// commandReference is the README's table of commands, written from the
// command tree: what --help of each command says.
func commandReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString("| command | what it does | flags |\n|---|---|---|\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" || sub.Parent().Name() == "completion" {
				continue
			}
			var flags []string
			nats := false
			sub.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				switch {
				case f.Hidden || f.Name == "help" || f.Name == "config":
				case slices.Contains(connectionFlags, f.Name):
					nats = true
				case f.Shorthand != "":
					flags = append(flags, "`-"+f.Shorthand+"`/`--"+f.Name+"`")
				default:
					flags = append(flags, "`--"+f.Name+"`")
				}
			})
			if sub.Flags().Lookup("config") != nil {
				flags = append([]string{"`-c`"}, flags...)
			}
			if nats {
				flags = append(flags, "NATS flags")
			}
			what := strings.ReplaceAll(sub.Short, "|", `\|`)
			use := strings.TrimPrefix(sub.UseLine(), "trigger-worker ")
			use = strings.ReplaceAll(strings.TrimSuffix(use, " [flags]"), "|", `\|`)
			b.WriteString("| `" + use + "` | " + what + " | " + strings.Join(flags, " ") + " |\n")
			walk(sub)
		}
	}
	walk(root)
	b.WriteString("\nNATS flags: " + strings.Join(func() []string {
		var s []string
		for _, n := range connectionFlags {
			f := newRunCmd().Flags().Lookup(n)
			name := "`--" + n + "`"
			if f.Shorthand != "" {
				name = "`-" + f.Shorthand + "`/" + name
			}
			s = append(s, name)
		}
		return s
	}(), ", ") + ".\n")
	return b.String()
}

// TestREADMECommandReference: the README's command reference is what the
// command tree says (-update rewrites it).
func TestREADMECommandReference(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, referenceBegin), strings.Index(readme, referenceEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no command reference between %q and %q", referenceBegin, referenceEnd)
	}
	want := commandReference(newRootCmd(&bytes.Buffer{}, &bytes.Buffer{}))
	got := readme[i+len(referenceBegin) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:i+len(referenceBegin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's command reference differs from the command tree (go test ./cmd/trigger-worker -run %s -update rewrites it):\ngot:\n%s\nwant:\n%s", t.Name(), got, want)
}

// TestCLIDocsJSONFields: docs/cli.md documents every field of the JSON
// that -o json prints.
func TestCLIDocsJSONFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for name, v := range map[string]any{
		"check": checkReport{}, "check function": checkFunction{}, "check subscriptions": checkSubscriptions{}, "check catalogue": checkType{},
		"dlq": deadLetter{}, "registry ls": registration{}, "functions ls": revisionInfo{}, "functions show": revisionShown{},
		"replay": replayCounts{}, "test": functest.Report{}, "test case": functest.Result{},
		"eval": functest.Evaluation{}, "eval decision": event.Decision{}, "eval function": event.FunctionResult{},
	} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if !regexp.MustCompile("`" + regexp.QuoteMeta(tag) + "`").MatchString(doc) {
				t.Errorf("docs/cli.md does not document the field %q of %s -o json", tag, name)
			}
		}
	}
}

// TestNoConfigServesNothing: with no config file at all (outside the
// repository) check finds no functions and says so; from the repository's
// root it reads config/trigger-worker.yaml and the example scripts, as the
// README says.
func TestNoConfigServesNothing(t *testing.T) {
	check := func() checkReport {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"check", "-o", "json"}, &out, &errOut); err != nil {
			t.Fatalf("check: %v\n%s", err, errOut.String())
		}
		var r checkReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if r := check(); r.Config != "" || len(r.Functions) != 0 || !slices.Contains(r.Warnings, noFunctionsWarning) {
		t.Errorf("check without a config: %+v, want no file, no functions and the warning", r)
	}
	t.Chdir(root)
	if r := check(); r.Config != "config/trigger-worker.yaml" || r.Scripts != "config/scripts" || len(r.Functions) == 0 {
		t.Errorf("check in the repository: %+v, want config/trigger-worker.yaml and its scripts", r)
	}
}
