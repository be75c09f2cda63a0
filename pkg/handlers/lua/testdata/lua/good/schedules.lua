-- Schedule forms seen in FDL scripts.
function register()
  return { "every_minute", "daily", "midnight" }
end

function every_minute(p)
  if p == nil then
    return { ref = "every_minute", triggerType = "SCHEDULED", api = "TRIGGER", version = 1,
      schedule = { frequency = { MINUTE = 5 } } }
  end
end

function daily(p)
  if p == nil then
    return { ref = "daily", triggerType = "SCHEDULED", triggerOptions = { "ANY" }, api = "TRIGGER", version = 1,
      schedule = { start = { HOUR = 23, MINUTE = 59, SECOND = 59 }, frequency = { HOUR = 24 } } }
  end
end

function midnight(p)
  if p == nil then
    return { ref = "midnight", priority = 0, triggerType = "SCHEDULED", api = "TRIGGER", version = 1,
      schedule = { start = { HOUR = 00, MINUTE = 0, SECOND = 0 }, Frequency = { Weeks = 1, days = 2 } } }
  end
end
