package lua_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// luaHeapPeak samples the Go heap until stop is called and returns the
// largest value seen above the heap at the start. If over is not zero, it
// calls exceeded once when the heap has grown by more than over.
func luaHeapPeak(t *testing.T, over uint64, exceeded func()) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
				if over > 0 && peak.Load() > over && exceeded != nil {
					exceeded()
					exceeded = nil
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// luaRunaway calls h, whose attack would run for minutes or forever, with a
// deadline of d, and checks that Handle returns (within luaBound) with a
// timeout. How long after the deadline it returned is logged, not
// asserted: a loaded machine may take seconds to schedule the call's
// goroutines. The callers check that the call has stopped (h.Close, the
// heap) after Handle has returned.
func luaRunaway(t *testing.T, h handlers.Handler, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(luaCtx(t, nil, nil), d)
	defer cancel()
	_, err := luaCallWithin(t, ctx, h, luaEvent(`{"attack":true}`))
	dl, _ := ctx.Deadline()
	t.Logf("Handle() returned %v after its deadline", time.Since(dl).Round(time.Millisecond))
	if !errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("Handle() error = %v, want a timeout", err)
	}
	return err
}

// TestLuaTailRecursionInPcall: a tail recursion under pcall stops at its
// deadline. gopher-lua's pcall built a traceback with a line for every tail
// call once the deadline raised its error: gigabytes, for about a minute,
// while the call had long been reported as timed out. Three in a row leave
// nothing behind.
func TestLuaTailRecursionInPcall(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"pcall", `local function f(n) return f(n + 1) end
    local ok, err = pcall(f, 1)`},
		{"xpcall", `local function f(n) return f(n + 1) end
    local ok, err = xpcall(function() return f(1) end, function(e) return e end)`},
		{"pcall in a loop", `local function f(n) return f(n + 1) end
    while true do pcall(f, 1) end`},
		{"error in a tail call", `local function f(n) if n > 1e6 then error("deep") end return f(n + 1) end
    while true do pcall(f, 1) end`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := luaAttack(t, "    "+tt.body)
			peak := luaHeapPeak(t, 0, nil)
			for range 3 {
				err := luaRunaway(t, h, time.Second)
				if err != nil && strings.Contains(err.Error(), "did not stop") {
					t.Errorf("Handle() error = %v, want a call that stopped", err)
				}
			}
			// The calls have stopped: their states are closed, and Close
			// has nothing to wait for.
			if err := h.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
			time.Sleep(200 * time.Millisecond) // whatever still runs shows in the heap
			if p := peak(); p > 256<<20 {
				t.Errorf("heap grew by %d MiB during the calls, want at most 256 MiB", p>>20)
			}
		})
	}
}

// TestLuaRunawayPattern: a string pattern that backtracks for minutes stops
// at the call's deadline, in each of the functions that match patterns.
func TestLuaRunawayPattern(t *testing.T) {
	const subject, pattern = `string.rep("a", 40)`, `string.rep("a*", 40) .. "b"`
	for _, tt := range []struct{ name, body string }{
		{"find", `local x = string.find(` + subject + `, ` + pattern + `)`},
		{"match", `local x = (` + subject + `):match(` + pattern + `)`},
		{"gmatch", `for x in string.gmatch(` + subject + `, ` + pattern + `) do end`},
		{"gsub", `local x = string.gsub(` + subject + `, ` + pattern + `, "")`},
		{"pcall of find", `while true do pcall(string.find, ` + subject + `, ` + pattern + `) end`},
		{"optional items", `local x = string.find(string.rep("a", 60), string.rep("a?", 60) .. string.rep("a", 60) .. "b")`},
		{"balance", `local s = string.rep("(", 200000) while true do local x = s:find("%b()") end`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := luaAttack(t, "    "+tt.body)
			err := luaRunaway(t, h, 300*time.Millisecond)
			if err != nil && strings.Contains(err.Error(), "did not stop") {
				t.Errorf("Handle() error = %v, want a call that stopped", err)
			}
			if err := h.Close(); err != nil {
				t.Errorf("Close() = %v, want nil: the call still runs", err)
			}
		})
	}
}

// TestLuaPatterns checks the pattern functions against what Lua 5.1 gives.
func TestLuaPatterns(t *testing.T) {
	h := luaFunc(t, `
  local function eq(name, got, ...)
    local want = { ... }
    for i = 1, math.max(#got, #want) do
      if got[i] ~= want[i] then
        error(name .. ": value " .. i .. " is " .. tostring(got[i]) .. ", want " .. tostring(want[i]), 2)
      end
    end
  end
  local function fails(name, want, f, ...)
    local ok, err = pcall(f, ...)
    if ok or not tostring(err):find(want, 1, true) then
      error(name .. ": got " .. tostring(ok) .. ", " .. tostring(err) .. "; want an error with " .. want, 2)
    end
  end
  eq("find", { string.find("hello world", "o w") }, 5, 7)
  eq("find repeat", { string.find("hello", "l+") }, 3, 4)
  eq("find none", { string.find("hello", "xyz") }, nil)
  eq("find plain", { string.find("a.b", ".", 1, true) }, 2, 2)
  eq("find plain special", { string.find("a+b", "+", 1, true) }, 2, 2)
  eq("find escaped", { string.find("a+b", "%+") }, 2, 2)
  eq("find negative init", { string.find("abc", "c", -1) }, 3, 3)
  eq("find negative init misses", { string.find("abc", "b", -1) }, nil)
  eq("find init past the end", { string.find("abc", "", 10) }, 4, 3)
  eq("find captures", { string.find("key=val", "(%w+)=(%w+)") }, 1, 7, "key", "val")
  eq("find anchored", { string.find("abab", "^b") }, nil)
  eq("find anchored init", { string.find("abab", "^b", 2) }, 2, 2)
  eq("method", { ("abc"):find("b") }, 2, 2)
  eq("match", { string.match("key=value", "(%w+)=(%w+)") }, "key", "value")
  eq("match whole", { string.match("hello 42", "%d+") }, "42")
  eq("match trim", { string.match("  trim me  ", "^%s*(.-)%s*$") }, "trim me")
  eq("match positions", { string.match("hello", "()ll()") }, 3, 5)
  eq("match escapes", { string.match("THE (quick) fox", "%((%a+)%)") }, "quick")
  eq("match balance", { string.match("f(a(b)c)d", "%b()") }, "(a(b)c)")
  eq("match frontier", { string.match("THE (quick) fox", "%f[%a]%l+") }, "quick")
  eq("match back reference", { string.match("say 'hi' now", "(['\"])(.-)%1") }, "'", "hi")
  eq("match date", { string.match("2024-01-05", "(%d+)-(%d+)-(%d+)") }, "2024", "01", "05")
  eq("match brackets", { string.match("[test]", "^%[(.*)%]$") }, "test")
  eq("match set with ]", { string.match("x]y", "[]]") }, "]")
  eq("match set with escape", { string.match("a-b", "[a%-]+") }, "a-")
  eq("match complement", { string.match("abc123", "[^%a]+") }, "123")
  eq("match range", { string.match("xyz-1", "[a-y]+") }, "xy")
  eq("match identifier", { string.match("hello_123", "^[%a_][%w_]*$") }, "hello_123")
  eq("match optional", { string.match("color colour", "colou?r", 2) }, "colour")
  eq("match dollar inside", { string.match("a$b", "a$b") }, "a$b")
  eq("match end", { string.match("abc", "c$") }, "c")
  eq("match classes", { string.match("\t x!Y9", "%s+(%a)(%p)(%u)(%x)") }, "x", "!", "Y", "9")
  eq("gsub", { string.gsub("hello world", "o", "0") }, "hell0 w0rld", 2)
  eq("gsub capture", { string.gsub("hello world", "(%w+)", "<%1>") }, "<hello> <world>", 2)
  eq("gsub whole", { string.gsub("abc", "%w", "%0%0") }, "aabbcc", 3)
  eq("gsub limit", { string.gsub("hello world", "%w+", "%0 %0", 1) }, "hello hello world", 1)
  eq("gsub empty", { string.gsub("abc", "", "-") }, "-a-b-c-", 4)
  eq("gsub anchored", { string.gsub("aaa", "^a", "z") }, "zaa", 1)
  eq("gsub table", { string.gsub("$name is $age", "%$(%w+)", { name = "bob", age = 3 }) }, "bob is 3", 2)
  eq("gsub function", { string.gsub("x = 1 + 2", "%d", function(d) return d * 2 end) }, "x = 2 + 4", 2)
  eq("gsub keeps", { string.gsub("abc", "%w", function(c) if c == "b" then return "B" end end) }, "aBc", 3)
  eq("gsub percent", { string.gsub("50", "%d+", "%%%0") }, "%50", 1)
  local got = {}
  for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do got[#got + 1] = k .. v end
  eq("gmatch", got, "a1", "b2")
  got = {}
  for w in string.gmatch("one two", "%a+") do got[#got + 1] = w end
  eq("gmatch words", got, "one", "two")
  local n = 0
  for w in string.gmatch("abc", "") do n = n + 1 end
  eq("gmatch empty", { n }, 4)
  fails("missing ]", "malformed pattern (missing ']')", string.find, "a", "[a")
  fails("ends with %", "malformed pattern (ends with '%')", string.find, "a", "%")
  fails("unfinished capture", "unfinished capture", string.match, "a", "(a")
  fails("invalid pattern capture", "invalid pattern capture", string.match, "a", "a)")
  fails("invalid capture index", "invalid capture index", string.gsub, "a", "a", "%2")
  fails("back reference", "invalid capture index", string.match, "a", "%1")
  fails("frontier", "missing '[' after '%f' in pattern", string.match, "a", "%fa")
  fails("balance", "unbalanced pattern", string.match, "a", "%b(")
  fails("too complex", "pattern too complex", string.match, string.rep("a", 300), string.rep("a?", 300))
  fails("replacement", "invalid replacement value (a table)", string.gsub, "a", "a", function() return {} end)
  return { exitState = "SUCCESS" }`)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`))
	if err != nil || res.State() != handlers.Success {
		t.Fatalf("Handle() = %+v, %v; want SUCCESS", res, err)
	}
}
