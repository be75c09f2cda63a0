-- api_audit.lua: posts every User API call that changes something to the
-- audit endpoint in the customer's resource key audit_url. Reads (list*,
-- get*) are skipped.

local json = new("JSON")

function register()
  return { "audit_user_api" }
end

local function auditURL(customer)
  local keys = customer:getResourceKey()
  for i = 0, keys:size() - 1 do
    if keys:get(i):getName() == "audit_url" then
      return keys:get(i):getValue()
    end
  end
end

function audit_user_api(p)
  if (p == nil) then
    return {
      ref = "audit_user_api",
      name = "User API audit",
      description = "Posts User API calls that change something to an audit endpoint",
      triggerType = "POST_USER_API_CALL",
      triggerOptions = { "ANY" },
      api = "TRIGGER",
      version = 1,
    }
  end

  local utils = new("Utils")
  if utils:stringStartsWith(p.triggerOption, "list") or Utils.stringStartsWith(p.triggerOption, "get") then
    return { exitState = "CONTINUE" }
  end
  local url = auditURL(p.customer)
  if url == nil then
    return { exitState = "CONTINUE" }
  end

  local event = {
    method = p.triggerOption,
    customer = p.customer:getResourceUUID(),
    user = p.user:getEmail(),
    time = new("FDLDateHelper"):getString(p.timeStamp, "yyyy-MM-dd'T'HH:mm:ss.SSSX"),
  }
  local connection = simplehttp.newConnection({ url = url })
  connection:setRequestHeaders({ ["Content-Type"] = "application/json" })
  local reply = ""
  local ok = connection:post(json:encode(event), function(chunk)
    reply = reply .. chunk
    return true
  end)
  if not ok then
    local code, message = connection:getLastError()
    syslog.syslog("LOG_ERR", "audit post failed: " .. code .. " " .. message)
    return { exitState = "CONTINUE" }
  end
  connection:disconnect()
  return { exitState = "SUCCESS", errorMessage = connection:getHTTPStatusCode() .. " " .. reply }
end
