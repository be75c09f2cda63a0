-- nightly_sweep.lua: a SCHEDULED function, here every 5 minutes.
--
-- For SCHEDULED, p.input is {scheduledMs, frequencyMs, nowMs}. Each tick
-- runs once across the whole fleet of workers. This one only logs; a real
-- sweep would look for expired resources and clean them up. A daily run at
-- a set time would be schedule = {start = {HOUR = 23, MINUTE = 59},
-- frequency = {HOUR = 24}}.

function register()
  return { "nightly_sweep" }
end

function nightly_sweep(p)
  if p == nil then
    return {
      ref = "nightly_sweep",
      name = "Sweep",
      description = "Logs each scheduled run",
      triggerType = "SCHEDULED",
      api = "TRIGGER",
      version = 1,
      schedule = { frequency = { MINUTE = 5 } },
    }
  end

  local scheduled, frequency = p.input[1], p.input[2]
  trigger.log("info", "sweep", {
    scheduled = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(scheduled / 1000)),
    scheduledMs = scheduled,
    frequencyMs = frequency,
  })
  return { exitState = "SUCCESS" }
end
