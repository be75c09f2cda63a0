-- translate.string: the catalogue's text, or the key itself.

function register()
  return { "translated" }
end

function translated(p)
  if p == nil then
    return { ref = "translated", name = "Translated", description = "", triggerType = "POST_CREATE",
      triggerOptions = { "SERVER" }, api = "TRIGGER", version = 1 }
  end
  local parts = {
    translate.string("backup.started"),
    translate:string("backup.done", p.input:getResourceName(), 3),
    translate.string("not.in.catalogue"),
    translate.string("backup.done"),
  }
  return { exitState = "SUCCESS", errorMessage = table.concat(parts, "|") }
end
