-- "\x1b" in a comment is fine; the string below is not.
local esc = [[ \x1b ]]

function register()
  return { "colour" }
end

function colour(p)
  if p == nil then
    return { ref = "colour", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
  local s = 'ok' .. "\\" .. "\x1b[31m"
  return nil
end
