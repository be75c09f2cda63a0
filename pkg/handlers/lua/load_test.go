package lua_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/schedule"
)

// luaLineOf returns the line of file that starts with prefix.
func luaLineOf(t *testing.T, file, prefix string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), prefix) {
			return n
		}
	}
	t.Fatalf("%s has no line starting with %q", file, prefix)
	return 0
}

func luaCloseAll(t *testing.T, fns []lua.ScriptFunction) {
	t.Cleanup(func() {
		for _, f := range fns {
			if err := f.Handler.Close(); err != nil {
				t.Errorf("Close(%s) = %v", f.Ref, err)
			}
		}
	})
}

func TestLuaLoadScripts(t *testing.T) {
	dir := filepath.Join("testdata", "lua", "good")
	fns, err := lua.LoadScripts(dir, lua.Options{})
	if err != nil {
		t.Fatalf("LoadScripts(%s) error = %v", dir, err)
	}
	luaCloseAll(t, fns)
	fdl := filepath.Join(dir, "fdl_style.lua")
	sched := filepath.Join(dir, "schedules.lua")
	want := []lua.ScriptFunction{
		{
			Ref: "deny_big_servers", Name: "Deny big servers", Description: "Refuses servers with too many CPUs",
			Entry: "check_cpu", TriggerType: "PRE_CREATE", TriggerOptions: []string{"SERVER", "DISK"},
			Priority: -10, API: "TRIGGER", Version: 1, File: fdl, Line: luaLineOf(t, fdl, "function check_cpu("),
		},
		{
			Ref: "nightly", Name: "Nightly", Description: "Runs at night", Entry: "sweep",
			TriggerType: "SCHEDULED", TriggerOptions: []string{"ANY"}, API: "TRIGGER", Version: 1,
			Schedule: map[string]map[string]int{
				"start":     {"HOUR": 22, "MINUTE": 0, "SECOND": 0},
				"frequency": {"HOUR": 24},
			},
			File: fdl, Line: luaLineOf(t, fdl, "function sweep("),
		},
		{
			Ref: "on_job_ref", Name: "On job", Entry: "on_job", TriggerType: "POST_JOB_STATE_CHANGE",
			TriggerOptions: []string{"SUCCESSFUL", "FAILED"}, API: "TRIGGER", Version: 1,
			File: fdl, Line: luaLineOf(t, fdl, "function on_job("),
		},
		{
			Ref: "every_minute", Entry: "every_minute", TriggerType: "SCHEDULED", TriggerOptions: []string{"ANY"},
			API: "TRIGGER", Version: 1, Schedule: map[string]map[string]int{"frequency": {"MINUTE": 5}},
			File: sched, Line: luaLineOf(t, sched, "function every_minute("),
		},
		{
			Ref: "daily", Entry: "daily", TriggerType: "SCHEDULED", TriggerOptions: []string{"ANY"},
			API: "TRIGGER", Version: 1, Schedule: map[string]map[string]int{
				"start":     {"HOUR": 23, "MINUTE": 59, "SECOND": 59},
				"frequency": {"HOUR": 24},
			},
			Owner: schedule.Owner{BEUUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", CustomerUUID: "c-42"},
			File:  sched, Line: luaLineOf(t, sched, "function daily("),
		},
		{
			Ref: "midnight", Entry: "midnight", TriggerType: "SCHEDULED", TriggerOptions: []string{"ANY"},
			API: "TRIGGER", Version: 1, Schedule: map[string]map[string]int{
				"start":     {"HOUR": 0, "MINUTE": 0, "SECOND": 0},
				"frequency": {"WEEK": 1, "DAY": 2},
			},
			File: sched, Line: luaLineOf(t, sched, "function midnight("),
		},
	}
	if len(fns) != len(want) {
		t.Fatalf("LoadScripts(%s) = %d functions, want %d", dir, len(fns), len(want))
	}
	for i := range want {
		got := fns[i]
		if got.Handler == nil {
			t.Errorf("function %s has no handler", got.Ref)
		}
		got.Handler = nil
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("function %d = %+v\nwant %+v", i, got, want[i])
		}
	}

	// The loaded handlers run: the file-level local and helper are there.
	deny := fns[0].Handler
	res, err := deny.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":64}`))
	if err != nil || res.State() != handlers.Failed || res.ErrorMessage != "too many CPUs" {
		t.Errorf("deny_big_servers(64 CPUs) = %+v, %v; want FAILED", res, err)
	}
	res, err = deny.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":2}`))
	if err != nil || res.State() != handlers.Continue {
		t.Errorf("deny_big_servers(2 CPUs) = %+v, %v; want CONTINUE", res, err)
	}
}

func TestLuaLoadScriptsProblems(t *testing.T) {
	dir := filepath.Join("testdata", "lua", "bad")
	// The load timeout is per file: long enough for d_mixed.lua's dozen
	// description calls on a loaded machine, short for e_toplevel_loop.lua,
	// which never finishes.
	start := time.Now()
	fns, err := lua.LoadScripts(dir, lua.Options{LoadTimeout: 2 * time.Second})
	if took := time.Since(start); took > luaBound {
		t.Errorf("LoadScripts took %v, want it bounded by the load timeout", took)
	}
	luaCloseAll(t, fns)
	if len(fns) != 1 || fns[0].Ref != "mixed_good" {
		t.Errorf("LoadScripts(%s) loaded %d functions, want only mixed_good", dir, len(fns))
	}
	if err == nil {
		t.Fatal("LoadScripts() error = nil, want the problems")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("LoadScripts() error is a %T, want a joined error", err)
	}
	mixed := filepath.Join(dir, "d_mixed.lua")
	regLine := luaLineOf(t, mixed, "function register(")
	want := []struct {
		file, substr string
		line         int
		is           error
	}{
		{"a_syntax.lua", "syntax error near 'triggerType'", 7, nil},
		{"b_no_register.lua", "no register() function", 0, nil},
		{"c_register_not_list.lua", "register() returned a string, want a list", 1, nil},
		{"d_mixed.lua", `entry point "missing" is a nil, not a function`, regLine, nil},
		{"d_mixed.lua", `entry point "not_a_function" is a number, not a function`, regLine, nil},
		{"d_mixed.lua", `bad_priority: priority is a string ("high"), want an integer`, luaLineOf(t, mixed, "function bad_priority("), nil},
		{"d_mixed.lua", "bad_options: triggerOptions is a string (SERVER), want a list of strings", luaLineOf(t, mixed, "function bad_options("), nil},
		{"d_mixed.lua", "no_ref: the description has no ref", luaLineOf(t, mixed, "function no_ref("), nil},
		{"d_mixed.lua", "no_type: the description has no triggerType", luaLineOf(t, mixed, "function no_type("), nil},
		{"d_mixed.lua", "cannot describe myself", luaLineOf(t, mixed, `error("cannot describe myself")`), nil},
		{"d_mixed.lua", "bad_schedule: schedule.frequency has the key FORTNIGHT", luaLineOf(t, mixed, "function bad_schedule("), nil},
		{"d_mixed.lua", `dup: ref "mixed_good" is already used`, luaLineOf(t, mixed, "function dup("), nil},
		{"e_toplevel_loop.lua", "the top-level code did not finish within the load timeout of 2s", 0, context.DeadlineExceeded},
		{"f_toplevel_error.lua", "attempt to index a non-table object(nil) with key 'limit'", 2, nil},
		{"g_escape.lua", "attempt to index a non-table object(nil) with key 'open'", 2, nil},
	}
	got := joined.Unwrap()
	if len(got) != len(want) {
		t.Errorf("LoadScripts() = %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range min(len(got), len(want)) {
		w := want[i]
		var lerr *lua.Error
		if !errors.As(got[i], &lerr) {
			t.Errorf("problem %d = %v (%T), want a *lua.Error", i, got[i], got[i])
			continue
		}
		file := filepath.Join(dir, w.file)
		prefix := file + ":"
		if w.line > 0 {
			prefix = file + ":" + itoa(w.line) + ": "
		}
		msg := got[i].Error()
		if lerr.File != file || !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, w.substr) {
			t.Errorf("problem %d = %q, want %q...%q", i, msg, prefix, w.substr)
		}
		if w.file == "e_toplevel_loop.lua" && (lerr.Line < 3 || lerr.Line > 5) {
			t.Errorf("problem %d = %q, want the line of the loop", i, msg)
		}
		if w.is != nil && !errors.Is(got[i], w.is) {
			t.Errorf("problem %d = %v, want it to wrap %v", i, got[i], w.is)
		}
	}
	if !strings.HasPrefix(err.Error(), filepath.Join(dir, "a_syntax.lua")+":7: ") {
		t.Errorf("LoadScripts() error = %q, want each line to start with file:line", err)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestLuaLoadScriptErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := lua.LoadScripts(filepath.Join(dir, "missing"), lua.Options{}); err == nil {
		t.Error("LoadScripts(missing dir) error = nil")
	}
	fns, err := lua.LoadScript(filepath.Join(dir, "missing.lua"), lua.Options{})
	var lerr *lua.Error
	if len(fns) != 0 || !errors.As(err, &lerr) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadScript(missing file) = %d, %v; want a *lua.Error wrapping ErrNotExist", len(fns), err)
	}
	if _, err := lua.LoadScripts(dir, lua.Options{PoolSize: -1}); !errors.Is(err, handlers.ErrInvalidConfig) {
		t.Errorf("LoadScripts(PoolSize -1) error = %v, want ErrInvalidConfig", err)
	}
	if fns, err := lua.LoadScripts(dir, lua.Options{}); len(fns) != 0 || err != nil {
		t.Errorf("LoadScripts(empty dir) = %d, %v; want nothing", len(fns), err)
	}
}
