function main(p)
  if p == nil then
    return { ref = "no_register", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
end
