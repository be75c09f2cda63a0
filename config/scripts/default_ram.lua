-- default_ram.lua: gives servers created without a RAM size a default one.
--
-- A PRE function may change p.input: the changed server is what the next
-- function sees and what the orchestrator creates. The priority is higher
-- than quota.lua's, so this runs after the quota check (ascending order).

local DEFAULT_RAM_MB = 2048

function register()
  return { "default_ram" }
end

function default_ram(p)
  if p == nil then
    return {
      ref = "default_ram",
      name = "Default RAM",
      description = "Sets ram to " .. DEFAULT_RAM_MB .. " MB on servers created without it",
      priority = 100,
      triggerType = "PRE_CREATE",
      triggerOptions = { "SERVER" },
      api = "TRIGGER",
      version = 1,
    }
  end

  if type(p.input) ~= "table" then
    return { exitState = "CONTINUE" }
  end
  if p.input.ram == nil or p.input.ram == trigger.null then
    p.input.ram = DEFAULT_RAM_MB
    return { exitState = "SUCCESS" }
  end
  return { exitState = "CONTINUE" }
end
