function register()
  return { "main" }
end

function main(p)
  if p == nil then
    return { ref = "syntax" triggerType = "POST_CREATE" }
  end
end
