function register()
  return "main"
end

function main(p)
  if p == nil then
    return { ref = "register_not_list", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
end
