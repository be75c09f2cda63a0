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
      -- The billing entity and customer its ticks carry (p.beUUID, p.customer).
      schedule = { start = { HOUR = 23, MINUTE = 59, SECOND = 59 }, frequency = { HOUR = 24 },
        beUUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", CustomerUUID = "c-42" } }
  end
end

function midnight(p)
  if p == nil then
    return { ref = "midnight", priority = 0, triggerType = "SCHEDULED", api = "TRIGGER", version = 1,
      schedule = { start = { HOUR = 00, MINUTE = 0, SECOND = 0 }, Frequency = { Weeks = 1, days = 2 } } }
  end
end
