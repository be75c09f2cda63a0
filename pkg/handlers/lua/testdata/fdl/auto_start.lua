-- auto_start.lua: once a CREATE_SERVER job has succeeded, start the new
-- server, if its customer carries the resource key auto_start = true.
-- The start is made through the User API as the user who created the
-- server.

function register()
  return { "auto_start_server" }
end

local function customerWants(customer, keyName)
  if customer == nil or customer:getResourceKey() == nil then
    return false
  end
  local keys = customer:getResourceKey():iterator()
  while keys:hasNext() do
    local key = keys:next()
    if key:getName() == keyName and key:getValue() == "true" then
      return true
    end
  end
  return false
end

function auto_start_server(p)
  if (p == nil) then
    return {
      ref = "auto_start_server",
      name = "Auto start new servers",
      description = "Starts a server once its CREATE_SERVER job has succeeded",
      priority = 0,
      triggerType = "POST_JOB_STATE_CHANGE",
      triggerOptions = { "SUCCESSFUL" },
      api = "TRIGGER",
      version = 1,
    }
  end

  if p.input:getJobType() ~= new("JobType", "CREATE_SERVER") then
    return nil
  end
  if not customerWants(p.customer, "auto_start") then
    print("auto start is off for customer " .. p.input:getCustomerUUID())
    return { exitState = "CONTINUE" }
  end

  userAPI:setSessionUser(p.user:getEmail() .. "/" .. p.input:getCustomerUUID())
  local job = userAPI:changeServerStatus(p.input:getItemUUID(), new("ServerStatus", "RUNNING"), true, nil, nil)
  print("started server " .. p.input:getItemName() .. " with job " .. job:getResourceUUID() .. " (" .. job:getStatus():toString() .. ")")

  return { exitState = "SUCCESS" }
end
