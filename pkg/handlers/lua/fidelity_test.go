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

// TestLua52EnvRefused: a script that names _ENV (not in a comment or a
// string) does not load, with the line of the first use and what to do.
func TestLua52EnvRefused(t *testing.T) {
	tests := []struct {
		file string
		line int
	}{
		{"env.lua", 15},
		{"env_global.lua", 13},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "fidelity", "bad", tt.file)
			fns, err := lua.LoadScript(path, lua.Options{})
			luaCloseAll(t, fns)
			var le *lua.Error
			if !errors.As(err, &le) || le.File != path || le.Line != tt.line ||
				!strings.Contains(le.Message, "_ENV is Lua 5.2") || !strings.Contains(le.Message, "keep the values in a table") {
				t.Fatalf("LoadScript(%s) error = %v, want %s:%d: _ENV is Lua 5.2 ...", path, err, path, tt.line)
			}
			if len(fns) != 0 {
				t.Errorf("LoadScript(%s) loaded %d functions, want none", path, len(fns))
			}
		})
	}
}
