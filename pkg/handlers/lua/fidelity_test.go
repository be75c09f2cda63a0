package lua_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// fidelityHandler loads testdata/fidelity/<file> with opts and returns the
// handler of its function ref.
func fidelityHandler(t *testing.T, file, ref string, opts lua.Options) *lua.Handler {
	t.Helper()
	path := filepath.Join("testdata", "fidelity", file)
	fns, err := lua.LoadScript(path, opts)
	if err != nil {
		t.Fatalf("LoadScript(%s) error = %v", path, err)
	}
	luaCloseAll(t, fns)
	for _, f := range fns {
		if f.Ref == ref {
			return f.Handler
		}
	}
	t.Fatalf("LoadScript(%s) has no function %q", path, ref)
	return nil
}

// fidelitySucceeds calls h and fails t unless the script returned SUCCESS.
func fidelitySucceeds(t *testing.T, ctx context.Context, h *lua.Handler, ev *event.Event) handlers.Result {
	t.Helper()
	res, err := h.Handle(ctx, ev)
	if err != nil || res.ExitState != handlers.Success {
		t.Fatalf("Handle() = %+v, %v; want SUCCESS", res, err)
	}
	return res
}

const fidelityServer = `{"resourceUUID":"s-1","resourceName":"web-1","resourceType":"SERVER","status":"RUNNING",` +
	`"nics":[{"networkUUID":"n-1"}],"providerValues":{"BACKUP":{"plan":"daily"}},"cpu":2}`

func TestFDLObjectMethods(t *testing.T) {
	h := fidelityHandler(t, "objects.lua", "object_methods", lua.Options{})
	res := fidelitySucceeds(t, luaCtx(t, nil, nil), h, luaEvent(fidelityServer))
	if res.Input != nil {
		t.Errorf("Input = %s, want unchanged", res.Input)
	}
}

func TestLua52Shims(t *testing.T) {
	h := fidelityHandler(t, "lua52.lua", "lua52", lua.Options{})
	fidelitySucceeds(t, luaCtx(t, nil, nil), h, luaEvent(`[1764453600000,60000,1764453600000]`))
}

// TestLua52Refused: a script that names _ENV, or writes a \x or \z escape
// (not in a comment or a long string), does not load, with the line of the
// first use and what to do instead.
func TestLua52Refused(t *testing.T) {
	tests := []struct {
		file       string
		line       int
		what, hint string
	}{
		{"env.lua", 15, "_ENV is Lua 5.2", "keep the values in a table"},
		{"env_global.lua", 13, "_ENV is Lua 5.2", "keep the values in a table"},
		{"escape_x.lua", 12, `"\x" escapes are Lua 5.2`, `write a decimal escape ("\65") or string.char(0x41)`},
		{"escape_z.lua", 11, `"\z" escapes are Lua 5.2`, "join the parts with .."},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "fidelity", "bad", tt.file)
			fns, err := lua.LoadScript(path, lua.Options{})
			luaCloseAll(t, fns)
			var le *lua.Error
			if !errors.As(err, &le) || le.File != path || le.Line != tt.line ||
				!strings.Contains(le.Message, tt.what) || !strings.Contains(le.Message, tt.hint) {
				t.Fatalf("LoadScript(%s) error = %v, want %s:%d: %s ... %s", path, err, path, tt.line, tt.what, tt.hint)
			}
			if len(fns) != 0 {
				t.Errorf("LoadScript(%s) loaded %d functions, want none", path, len(fns))
			}
		})
	}
}
