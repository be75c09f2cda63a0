--[[ _ENV
     in a long comment ]]
local s = [[ _ENV ]]

function register()
  return { "reads_env" }
end

function reads_env(p)
  if p == nil then
    return { ref = "reads_env", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
  local settings = _ENV.settings
  return nil
end
