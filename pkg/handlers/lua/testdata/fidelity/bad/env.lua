-- A Lua 5.2 script that sets its globals through _ENV: in Lua 5.1 the
-- assignment below would write to a plain local, and every later global
-- lookup would go to the real globals.
local print = print
local msg = "-- _ENV in a comment is fine, and so is '_ENV' in a string"

function register()
  return { "uses_env" }
end

function uses_env(p)
  if p == nil then
    return { ref = "uses_env", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
  local _ENV = { exitState = "SUCCESS" }
  return { exitState = exitState }
end
