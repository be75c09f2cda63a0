-- job_failed_alert.lua: publishes an alert for every job that fails.
--
-- p.input is the Job. The alert goes to NATS on alerts.job.failed, stamped
-- with Trigger-Origin like everything a trigger function sends, so it fires
-- no trigger itself. If it cannot be sent the function fails, and the worker
-- delivers the event again later.

function register()
  return { "job_failed_alert" }
end

function job_failed_alert(p)
  if p == nil then
    return {
      ref = "job_failed_alert",
      name = "Failed job alert",
      description = "Publishes alerts.job.failed for each failed job",
      priority = 0,
      triggerType = "POST_JOB_STATE_CHANGE",
      triggerOptions = { "FAILED" },
      api = "TRIGGER",
      version = 1,
    }
  end

  local job = type(p.input) == "table" and p.input or {}
  local ok, err = trigger.publish("alerts.job.failed", {
    event = p.id,
    time = p.timeStamp,
    job = job.resourceUUID,
    jobType = job.jobType,
    itemType = job.itemType,
    itemUUID = job.itemUUID,
    itemName = job.itemName,
    customer = job.customerUUID,
    errorCode = job.errorCode,
    info = job.info,
  })
  if not ok then
    error("cannot publish the alert: " .. err)
  end
  trigger.log("info", "failed job alert sent", { job = job.resourceUUID, jobType = job.jobType })
  return { exitState = "SUCCESS" }
end
