package lua_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/handlerstest"
)

func TestLuaConformance(t *testing.T) {
	kind := func(body string) func(t *testing.T) handlers.Handler {
		return func(t *testing.T) handlers.Handler { return luaFunc(t, body) }
	}
	handlerstest.Run(t, handlerstest.Kind{
		Name:     "lua",
		Continue: kind(`  return { exitState = "CONTINUE" }`),
		Fail:     kind(`  return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs" }`),
		Modify: kind(`  p.input.cpu = p.input.cpu * 2
  p.input.tagged = true
  return { exitState = "SUCCESS" }`),
		Hang:  kind(`  while true do pcall(function() while true do end end) end`),
		Error: kind(`  error("boom")`),
		Returns: func(t *testing.T, doc string) handlers.Handler {
			dec := json.NewDecoder(strings.NewReader(doc))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("result document %s: %v", doc, err)
			}
			return luaFunc(t, "  return "+luaLiteral(v))
		},
	})
}

// luaLiteral writes v, a JSON value decoded with UseNumber, as a Lua
// expression: objects and arrays as table constructors, null as trigger.null.
func luaLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "trigger.null"
	case bool:
		return fmt.Sprint(x)
	case json.Number:
		return x.String()
	case string:
		var b bytes.Buffer
		b.WriteByte('"')
		for i := range len(x) {
			c := x[i]
			if c >= ' ' && c <= '~' && c != '"' && c != '\\' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\%d`, c)
			}
		}
		b.WriteByte('"')
		return b.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = luaLiteral(e)
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = "[" + luaLiteral(k) + "] = " + luaLiteral(x[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	panic(fmt.Sprintf("luaLiteral: %T", v))
}
