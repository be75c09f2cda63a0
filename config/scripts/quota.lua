-- quota.lua: refuses servers with more CPUs than the platform allows.
--
-- PRE_CREATE on SERVER is a decision the orchestrator waits for. Returning
-- exitState FAILED refuses the server; errorCode and errorMessage reach the
-- caller in the PRE reply. Anything else lets the creation go on.

local MAX_CPU = 16

function register()
  return { "quota_max_cpu" }
end

function quota_max_cpu(p)
  if p == nil then
    return {
      ref = "quota_max_cpu",
      name = "CPU quota",
      description = "Refuses servers with more than " .. MAX_CPU .. " CPUs",
      priority = 0,
      triggerType = "PRE_CREATE",
      triggerOptions = { "SERVER" },
      api = "TRIGGER",
      version = 1,
    }
  end

  local cpu = type(p.input) == "table" and tonumber(p.input.cpu) or nil
  if cpu ~= nil and cpu > MAX_CPU then
    return {
      exitState = "FAILED",
      errorCode = "QUOTA_EXCEEDED",
      errorMessage = string.format("servers are limited to %d CPUs (asked for %d)", MAX_CPU, cpu),
    }
  end
  return { exitState = "CONTINUE" }
end
