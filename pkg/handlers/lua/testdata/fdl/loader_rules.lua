-- loader_rules.lua: descriptor forms FDL code blocks use, which the loader
-- must accept as they are.

-- The chunk runs before register(): register() returns this file-level
-- list.
local ENTRY_POINTS = { "backup_provider", "nightly_cleanup" }

function register()
  return ENTRY_POINTS
end

-- A configuration provider wires two more entry points through
-- triggerFunctions. It is not a trigger itself.
function backup_provider(p)
  return {
    ref = "backup_provider",
    name = "Backup",
    description = "Backup settings",
    api = "CONFIG_PROVIDER",
    version = 1,
    triggerFunctions = { "on_server_deleting", "on_job_done" },
  }
end

-- The ref differs from the function's name, and there is no priority.
function on_server_deleting(p)
  if (p == nil) then
    return {
      ref = "backup_cleanup_on_delete",
      name = "Backup clean-up",
      description = "Forgets the backups of deleted servers",
      triggerType = "POST_SERVER_STATE_CHANGE",
      triggerOptions = { "DELETING" },
      api = "TRIGGER",
      version = 1,
    }
  end
  -- Nothing returned: CONTINUE.
  return nil
end

function on_job_done(p)
  if (p == nil) then
    return {
      ref = "backup_on_job",
      name = "Backup on job",
      description = "Follows customer jobs",
      triggerType = "POST_JOB_STATE_CHANGE",
      triggerOptions = { "SUCCESSFUL" },
      api = "TRIGGER",
      version = 1,
    }
  end
  -- A table without exitState: CONTINUE.
  return { returnCode = "CONTINUE" }
end

-- SCHEDULED without triggerOptions, with keys in other cases, a plural
-- unit and the literal 00.
function nightly_cleanup(p)
  if (p == nil) then
    return {
      ref = "nightly_cleanup",
      name = "Nightly clean-up",
      description = "Runs at midnight",
      triggerType = "SCHEDULED",
      api = "TRIGGER",
      version = 1,
      schedule = { start = { HOUR = 00, minute = 0, Second = 0 }, frequency = { hours = 24 } },
    }
  end
  return { exitState = "SUCCESS" }
end

-- Described but never listed: not registered.
function forgotten(p)
  if (p == nil) then
    return {
      ref = "forgotten",
      triggerType = "POST_CREATE",
      triggerOptions = { "SERVER" },
      api = "TRIGGER",
      version = 1,
    }
  end
  return { exitState = "SUCCESS" }
end
