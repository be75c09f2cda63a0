-- FDLEmailHelper, as FDL scripts call it: through sendEmail, and by
-- calling the helper itself.

function register()
  return { "email_alert" }
end

function email_alert(p)
  if p == nil then
    return { ref = "email_alert", name = "Email alert", description = "", triggerType = "POST_SERVER_STATE_CHANGE",
      triggerOptions = { "STOPPED" }, api = "TRIGGER", version = 1 }
  end
  local server = p.input
  local msg = "SERVER " .. server:getResourceName() .. " has stopped"
  local helper = new("FDLEmailHelper")
  helper:sendEmail("ops@example.com", "be@example.com", nil, "cc1@example.com, cc2@example.com", nil,
    "SERVER SHUTDOWN ALERT", msg, nil)
  local sent = helper({ "owner@example.com" }, "be@example.com", "reply@example.com", nil, { "audit@example.com" },
    "Signup-Login Alert", msg, nil)
  if sent ~= true then error("sendEmail returned " .. tostring(sent)) end
  local ok, err = pcall(helper.sendEmail, helper, nil, "be@example.com", nil, nil, nil, "no one", msg, nil)
  if ok then error("a message without recipient was sent") end
  return { exitState = "SUCCESS", errorMessage = err }
end
