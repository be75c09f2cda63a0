function register()
  return { "joined" }
end

function joined(p)
  if p == nil then
    return { ref = "joined", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
  local s = "a long \
line"
  local t = "one \z
             two"
  return nil
end
