package lua_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// TestLuaMemoryLimit: a call that keeps what it allocates fails with a
// memory error, however it holds the memory; the heap stays within a small
// multiple of the limit. What stops a call the limit missed is the heap
// outgrowing that multiple (the test cancels the call then), not the
// clock: the call has a deadline only as a guard against a hang.
func TestLuaMemoryLimit(t *testing.T) {
	const limit = 16 << 20
	for _, tt := range []struct{ name, body string }{
		{"table of tables", `local t = {}
    local i = 0
    while true do i = i + 1; t[i] = { i } end`},
		{"strings", `local t = {}
    for i = 1, 1e9 do t[i] = string.rep("x", 1048576) .. i end`},
		{"string keys", `local t = {}
    for i = 1, 1e9 do t["k" .. i] = true end`},
		{"closures", `local t = {}
    for i = 1, 1e9 do local x = { i } t[i] = function() return x end end`},
		{"in a local of a callee", `local function f()
      local x = {}
      for i = 1, 1e9 do x[i] = i end
    end
    f()`},
		{"in an upvalue", `local x = {}
    local function f(i) x[i] = { i } end
    for i = 1, 1e9 do f(i) end`},
		{"in a global", `big = {}
    for i = 1, 1e9 do big[i] = { i } end`},
		{"under pcall", `local ok, err = pcall(function()
      local t = {}
      while true do t[#t + 1] = {} end
    end)
    while true do end`},
		{"json decode", `local s = "[" .. string.rep("1,", 1e6) .. "1]"
    local t = {}
    for i = 1, 1e9 do t[i] = trigger.json.decode(s) end`},
		{"table.concat", `local parts = {}
    for i = 1, 1000 do parts[i] = string.rep("y", 1000) end
    local t = {}
    for i = 1, 1e9 do t[i] = table.concat(parts) end`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, fmt.Sprintf(`  if p.input.attack then
%s
  end
  return { exitState = "CONTINUE" }`, "    "+tt.body), lua.Options{PoolSize: 1, MaxMemory: limit})
			ctx, cancel := context.WithTimeout(luaCtx(t, nil, nil), luaBound/2)
			defer cancel()
			peak := luaHeapPeak(t, 8*limit, cancel)
			_, err := luaCallWithin(t, ctx, h, luaEvent(`{"attack":true}`))
			p := peak()
			if !errors.Is(err, lua.ErrMemoryLimit) || errors.Is(err, handlers.ErrTimeout) {
				t.Fatalf("Handle() error = %v (heap +%d MiB), want a memory limit error", err, p>>20)
			}
			var lerr *lua.Error
			if !errors.As(err, &lerr) || !strings.Contains(lerr.Message, "memory limit of 16 MiB exceeded: the call holds about") {
				t.Errorf("Handle() error = %v, want a *lua.Error that says the memory limit of 16 MiB was exceeded", err)
			}
			if p > 8*limit {
				t.Errorf("heap grew by %d MiB, want at most %d MiB", p>>20, 8*limit>>20)
			}
			t.Logf("%v (heap +%d MiB)", err, p>>20)
			luaCheckNextCall(t, h)
		})
	}
}

// TestLuaMemoryLimitKeeps: what a call allocates but drops, and a string
// held in many places, count once or not at all.
func TestLuaMemoryLimitKeeps(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"garbage", `local s = ""
  for i = 1, 3000 do s = s .. "xxxxxxxxxx" end
  for i = 1, 200 do local t = {} for j = 1, 10000 do t[j] = { j } end end`},
		{"shared string", `local s = string.rep("x", 1048576)
  local t = {}
  for i = 1, 1000 do t[i] = s end`},
		{"a few MiB", `local t = {}
  for i = 1, 20000 do t[i] = { i, tostring(i) } end`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, "  "+tt.body+"\n  return { exitState = \"SUCCESS\" }", lua.Options{MaxMemory: 16 << 20})
			res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(`{}`))
			if err != nil || res.State() != handlers.Success {
				t.Fatalf("Handle() = %+v, %v; want SUCCESS", res, err)
			}
		})
	}
}

func TestLuaMemoryLimitInvalid(t *testing.T) {
	err := lua.Options{MaxMemory: -1}.Validate()
	if !errors.Is(err, handlers.ErrInvalidConfig) || !strings.Contains(err.Error(), "max memory") {
		t.Errorf("Validate() = %v, want an invalid config error about max memory", err)
	}
}
