package lua_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// luaKeysOf is a script body's tail that answers with p's keys in pairs
// order (errorMessage) and p as JSON (errorCode).
const luaKeysOf = `
  local keys = {}
  for k in pairs(p) do keys[#keys + 1] = k end
  return { exitState = "FAILED", errorMessage = table.concat(keys, ","), errorCode = trigger.json.encode(p) }`

// TestLuaLazyEventSame: whatever a script reads of p first, and however it
// reads it, p has the same keys in the same order and the same JSON as
// when it read nothing.
func TestLuaLazyEventSame(t *testing.T) {
	const wantKeys = "id,triggerType,triggerOption,beUUID,timeStamp,customer,user,input,region"
	ev := luaEvent(`{"cpu":4,"tags":["a"]}`)
	ev.Extra = map[string]json.RawMessage{"region": json.RawMessage(`"eu-1"`)}
	var want string
	for _, first := range []string{
		"",
		"local x = p.input.cpu",
		"local x = p.user.email; local y = p.customer.resourceName",
		"local x = rawget(p, 'customer')",
		"local x = next(p)",
		"local x = getmetatable(p)",
		"local x = p.nothing; local y = p[1]",
		"local x = trigger.json.encode({ event = p })",
		"trigger.log('info', 'event', p)",
	} {
		t.Run(first, func(t *testing.T) {
			res, err := luaFunc(t, "  "+first+luaKeysOf).Handle(luaCtx(t, nil, nil), ev)
			if err != nil {
				t.Fatal(err)
			}
			if res.ErrorMessage != wantKeys {
				t.Errorf("pairs(p) = %s, want %s", res.ErrorMessage, wantKeys)
			}
			if want == "" {
				want = res.ErrorCode
				if !strings.Contains(want, `"customer":{"resourceUUID":"c-1"`) || !strings.Contains(want, `"input":{"cpu":4`) {
					t.Fatalf("json.encode(p) = %s, want the event's documents in it", want)
				}
			}
			if res.ErrorCode != want {
				t.Errorf("json.encode(p) = %s, want %s", res.ErrorCode, want)
			}
			if res.Input != nil {
				t.Errorf("input = %s, want none (unchanged)", res.Input)
			}
		})
	}
}

// TestLuaLazyEventRaw: the functions that bypass metatables see p's fields,
// and p has no metatable of its own for scripts.
func TestLuaLazyEventRaw(t *testing.T) {
	h := luaFunc(t, `  local out = {}
  out[#out + 1] = tostring(getmetatable(p))
  out[#out + 1] = rawget(p, "customer").resourceUUID
  rawset(p, "user", "replaced")
  out[#out + 1] = p.user
  setmetatable(p, { __index = function(_, k) return "meta:" .. k end })
  out[#out + 1] = p.input.cpu .. " " .. p.other
  return { exitState = "FAILED", errorMessage = table.concat(out, " ") }`)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "nil c-1 replaced 4 meta:other"; res.ErrorMessage != want {
		t.Errorf("got %q, want %q", res.ErrorMessage, want)
	}
}

// TestLuaLazyEventAssign: a field the script sets before reading it keeps
// what the script set, nil included.
func TestLuaLazyEventAssign(t *testing.T) {
	h := luaFunc(t, `  p.customer = nil
  p.user = "someone"
  p.added = 1`+luaKeysOf)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "id,triggerType,triggerOption,beUUID,timeStamp,user,input,added"; res.ErrorMessage != want {
		t.Errorf("pairs(p) = %s, want %s", res.ErrorMessage, want)
	}
	if !strings.Contains(res.ErrorCode, `"user":"someone"`) || strings.Contains(res.ErrorCode, "customer") {
		t.Errorf("json.encode(p) = %s, want user someone and no customer", res.ErrorCode)
	}
}

// TestLuaLazyEventInput: an input set before it was read is compared with
// the event's, so that the same input written back is no change.
func TestLuaLazyEventInput(t *testing.T) {
	for _, tt := range []struct{ name, input, body, want string }{
		{"not read", `{"cpu":4}`, "  return { exitState = 'CONTINUE' }", ""},
		{"set to the same", `{"cpu":4,"big":12345678901234567890}`, "  p.input = trigger.json.decode('{\"cpu\":4,\"big\":12345678901234567890}')", ""},
		{"set to another", `{"cpu":4}`, "  p.input = { cpu = 8 }", `{"cpu":8}`},
		{"returned the same", `{"cpu":4}`, "  return { exitState = 'CONTINUE', input = { cpu = 4 } }", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := luaFunc(t, tt.body).Handle(luaCtx(t, nil, nil), luaEvent(tt.input))
			if err != nil {
				t.Fatalf("Handle() error = %v", err)
			}
			if string(res.Input) != tt.want {
				t.Errorf("input = %s, want %s", res.Input, tt.want)
			}
		})
	}
}

// TestLuaLazyEventReturned: p returned as the result is read as the plain
// table it is, whatever the script read of it.
func TestLuaLazyEventReturned(t *testing.T) {
	_, err := luaFunc(t, "  return p").Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`))
	if err == nil || !strings.Contains(err.Error(), `unknown key "beUUID"`) {
		t.Errorf("error = %v, want the result's unknown key", err)
	}
}

// TestLuaLazyEventBadField: a field that does not decode ends the call
// that reads it, even under pcall, as it would have before the script ran;
// a call that does not read it is not concerned.
func TestLuaLazyEventBadField(t *testing.T) {
	ev := luaEvent(`{"cpu":4}`)
	ev.Customer = json.RawMessage(`{"a":`)
	for _, tt := range []struct {
		body    string
		wantErr bool
	}{
		{"  local ok = pcall(function() return p.customer end)\n  return { exitState = 'CONTINUE' }", true},
		{"  local ok = pcall(trigger.json.encode, p)\n  return { exitState = 'CONTINUE' }", true},
		{"  local ok = pcall(pairs, p)\n  return { exitState = 'CONTINUE' }", true},
		{"  return { exitState = 'CONTINUE', errorMessage = tostring(p.input.cpu) }", false},
	} {
		h := luaFunc(t, tt.body, lua.Options{PoolSize: 1})
		for range 2 { // the state serves the next call as well
			_, err := h.Handle(luaCtx(t, nil, nil), ev)
			if tt.wantErr && (err == nil || !strings.Contains(err.Error(), "event customer")) {
				t.Errorf("%s: error = %v, want the customer's decoding error", tt.body, err)
			}
			if !tt.wantErr && err != nil {
				t.Errorf("%s: error = %v", tt.body, err)
			}
			if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`)); err != nil {
				t.Errorf("%s: the next call: %v", tt.body, err)
			}
		}
	}
}

// TestLuaLazyEventFDLObjects: p.input, p.user and p.customer are FDL
// objects once read, whichever is read first.
func TestLuaLazyEventFDLObjects(t *testing.T) {
	h := luaFunc(t, `  return { exitState = "FAILED", errorMessage = p.user:getEmail() .. " " .. p.input:getCpu() .. " " .. p.customer:getResourceUUID() }`)
	ev := &event.Event{
		ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER",
		Customer: json.RawMessage(`{"resourceUUID":"c-1"}`),
		User:     json.RawMessage(`{"email":"u1@example.com"}`),
		Input:    json.RawMessage(`{"cpu":4}`),
	}
	res, err := h.Handle(luaCtx(t, nil, nil), ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := "u1@example.com 4 c-1"; res.ErrorMessage != want {
		t.Errorf("got %q, want %q", res.ErrorMessage, want)
	}
}

// TestTableWalksSettle holds what lazy.go promises: every walk of a
// table's keys (Next from the start, ForEach) in this package settles the
// table first, so that it never sees p with a field pending; except in
// code that runs outside a call's script, listed here with the reason.
func TestTableWalksSettle(t *testing.T) {
	exempt := map[string]string{
		"load.go":            "loading and describing a script: no event",
		"memory.go":          "measures what a call holds: a pending field holds nothing yet",
		"state.go:init":      "builds the state's environment: no event",
		"state.go:snapshot":  "builds the environment's prototype: no event",
		"lazy.go:settle":     "settles",
		"json_canonical.go:": "reads documents, not tables",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	walks := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		text := func(n ast.Node) string {
			return string(src[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
		}
		// check checks the walks in fn, a declaration (a function, or a
		// package-level value such as mapMethods).
		check := func(fn ast.Node, fnName string) {
			if _, ok := exempt[name]; ok {
				return
			}
			if _, ok := exempt[name+":"+fnName]; ok {
				return
			}
			settled := map[string][]token.Pos{}
			methodCalls(fn, func(call *ast.CallExpr, sel *ast.SelectorExpr) {
				switch {
				case sel.Sel.Name == "settle" && len(call.Args) == 1:
					settled[text(call.Args[0])] = append(settled[text(call.Args[0])], call.Pos())
				case sel.Sel.Name == "settleIn" && len(call.Args) == 2:
					settled[text(call.Args[1])] = append(settled[text(call.Args[1])], call.Pos())
				}
			})
			methodCalls(fn, func(call *ast.CallExpr, sel *ast.SelectorExpr) {
				walk := sel.Sel.Name == "ForEach" ||
					sel.Sel.Name == "Next" && len(call.Args) == 1 && text(call.Args[0]) == "lua.LNil"
				if !walk {
					return
				}
				walks++
				table := text(sel.X)
				for _, at := range settled[table] {
					if at < call.Pos() {
						return
					}
				}
				t.Errorf("%s: %s walks %s without settling it first (vm.lazy.settle)", fset.Position(call.Pos()), fnName, table)
			})
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				check(d, d.Name.Name)
			case *ast.GenDecl:
				check(d, "package level")
			}
		}
	}
	if walks < 10 {
		t.Fatalf("found %d walks of tables; the check lost track of the code", walks)
	}
}

// methodCalls calls visit with every method call (x.m(...)) in n.
func methodCalls(n ast.Node, visit func(call *ast.CallExpr, sel *ast.SelectorExpr)) {
	ast.Inspect(n, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				visit(call, sel)
			}
		}
		return true
	})
}
