-- What a script written for Lua 5.2 may use: table.unpack, table.pack,
-- bit32, and goto, which gopher-lua runs as Lua 5.2 does.

function register()
  return { "lua52" }
end

local function eq(got, want, what)
  if got ~= want then error(what .. ": got " .. tostring(got) .. ", want " .. tostring(want)) end
end

function lua52(p)
  if p == nil then
    return { ref = "lua52", name = "Lua 5.2", description = "", triggerType = "SCHEDULED", api = "TRIGGER",
      version = 1, schedule = { frequency = { MINUTE = 1 } } }
  end
  local a, b, c = table.unpack({ 1, 2, 3 })
  eq(a + b + c, 6, "table.unpack")
  local x, y = table.unpack({ 1, 2, 3 }, 2, 3)
  eq(x * 10 + y, 23, "table.unpack(t, i, j)")
  local packed = table.pack(1, nil, 3)
  eq(packed.n, 3, "table.pack n")
  eq(packed[3], 3, "table.pack values")
  eq(table.pack().n, 0, "table.pack()")

  eq(bit32.band(0xF0F0, 0xFF00), 0xF000, "band")
  eq(bit32.band(), 0xFFFFFFFF, "band()")
  eq(bit32.bor(0xF000, 0x000F, 0x0F00), 0xFF0F, "bor")
  eq(bit32.bxor(0xFF, 0x0F), 0xF0, "bxor")
  eq(bit32.bnot(0), 0xFFFFFFFF, "bnot")
  eq(bit32.bnot(-1), 0, "bnot of -1 (mod 2^32)")
  eq(bit32.btest(6, 3), true, "btest")
  eq(bit32.btest(4, 3), false, "btest false")
  eq(bit32.lshift(1, 31), 0x80000000, "lshift")
  eq(bit32.lshift(1, 32), 0, "lshift out")
  eq(bit32.lshift(8, -2), 2, "lshift negative")
  eq(bit32.rshift(0x80000000, 31), 1, "rshift")
  eq(bit32.rshift(1, -4), 16, "rshift negative")
  eq(bit32.arshift(0x80000000, 4), 0xF8000000, "arshift keeps the sign")
  eq(bit32.arshift(0x40000000, 4), 0x04000000, "arshift positive")
  eq(bit32.arshift(0x80000000, 40), 0xFFFFFFFF, "arshift out")
  eq(bit32.lrotate(0x80000001, 1), 3, "lrotate")
  eq(bit32.rrotate(3, 1), 0x80000001, "rrotate")
  eq(bit32.extract(0xABCD, 4, 8), 0xBC, "extract")
  eq(bit32.extract(5, 0), 1, "extract one bit")
  eq(bit32.replace(0xABCD, 0x0, 4, 8), 0xA00D, "replace")
  eq(bit32.band(2^32 + 5, 0xFF), 5, "numbers are taken mod 2^32")
  local ok, err = pcall(bit32.extract, 1, 30, 4)
  eq(ok, false, "extract past bit 31")
  eq(err:find("non-existent bits", 1, true) ~= nil, true, "extract error " .. tostring(err))

  eq(rawlen({ 1, 2, 3 }), 3, "rawlen of a table")
  eq(rawlen(setmetatable({ 1 }, { __len = function() return 9 end })), 1, "rawlen ignores __len")
  eq(rawlen("abcd"), 4, "rawlen of a string")
  eq(math.log(8, 2), 3, "math.log base 2")
  eq(math.log(1000, 10), 3, "math.log base 10")
  eq(math.floor(math.log(125, 5) + 0.5), 3, "math.log base 5")
  eq(math.log(1), 0, "math.log without a base")
  eq(string.rep("ab", 3, ","), "ab,ab,ab", "string.rep with a separator")
  eq(string.rep("", 3, "-"), "--", "string.rep of nothing with a separator")
  eq(("x"):rep(2), "xx", "string.rep without a separator")
  local ok2, sum = xpcall(function(a, b) return a + b end, debugHandler or print, 2, 3)
  eq(ok2, true, "xpcall with arguments")
  eq(sum, 5, "xpcall passes its arguments")
  local ok3, msg = xpcall(function(a) error("bad " .. a, 0) end, function(m) return "handled: " .. m end, "x")
  eq(ok3, false, "xpcall failure")
  eq(msg, "handled: bad x", "xpcall handler")

  -- "\x41" in a comment is no escape, nor in a long string or comment:
  local long = [[\x41 "\z"]]
  eq(long, "\\x41 \"\\z\"", "long strings have no escapes")
  eq('\\x41', [=[\x41]=], "an escaped backslash before x")
  --[==[ "\x41" ]==]
  eq("\65\066", "AB", "decimal escapes")

  local odd = {}
  for i = 1, 6 do
    if i % 2 == 0 then goto continue end
    odd[#odd + 1] = i
    ::continue::
  end
  eq(table.concat(odd, ","), "1,3,5", "goto continue")
  return { exitState = "SUCCESS" }
end
