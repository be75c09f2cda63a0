-- An FDL-style code block: file-level locals and helpers, register(), entry
-- points whose ref differs from their name, a SCHEDULED entry point without
-- triggerOptions, and a described function that is not registered.

local LIMIT = 16

local function tooBig(cpu)
  return cpu ~= nil and cpu > LIMIT
end

function register()
  return { "check_cpu", "sweep", "provider" }
end

function check_cpu(p)
  if p == nil then
    return {
      ref = "deny_big_servers",
      name = "Deny big servers",
      description = "Refuses servers with too many CPUs",
      priority = -10,
      triggerType = "PRE_CREATE",
      triggerOptions = { "SERVER", "DISK" },
      api = "TRIGGER",
      version = 1,
      includeCustomerTags = { "MIXPANEL_TEST" },
    }
  end
  if tooBig(p.input.cpu) then
    return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs" }
  end
  return { exitState = "CONTINUE" }
end

function sweep(p)
  if p == nil then
    return {
      ref = "nightly",
      name = "Nightly",
      description = "Runs at night",
      triggerType = "SCHEDULED",
      api = "TRIGGER",
      version = 1,
      schedule = { start = { hour = 22, minute = 0, second = 0 }, frequency = { hours = 24 } },
    }
  end
  return { exitState = "SUCCESS" }
end

-- A configuration provider: its triggerFunctions are entry points too.
function provider(p)
  return {
    ref = "backup_provider",
    name = "Backup",
    api = "CONFIG_PROVIDER",
    version = 1,
    triggerFunctions = { "on_job" },
  }
end

function on_job(p)
  if p == nil then
    return {
      ref = "on_job_ref",
      name = "On job",
      triggerType = "POST_JOB_STATE_CHANGE",
      triggerOptions = { "SUCCESSFUL", "FAILED" },
      api = "TRIGGER",
      version = 1,
    }
  end
  return nil
end

-- Described but not registered: never loaded.
function unlisted(p)
  if p == nil then
    return { ref = "unlisted", triggerType = "POST_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER", version = 1 }
  end
end
