-- shutdown_sweep.lua: every minute, stop the running servers whose
-- resource key shutdown_after (a time in ms) has passed.

local KEY = "shutdown_after"
local dates = new("FDLDateHelper")

function register()
  return { "shutdown_sweep" }
end

local function shutdownAfter(server)
  local keys = server:getResourceKey()
  for i = 0, keys:size() - 1 do
    local key = keys:get(i)
    if key:getName() == KEY then
      return tonumber(key:getValue())
    end
  end
  return nil
end

function shutdown_sweep(p)
  if (p == nil) then
    return {
      ref = "shutdown_sweep",
      name = "Scheduled shutdown",
      description = "Stops servers whose shutdown_after key has passed",
      triggerType = "SCHEDULED",
      api = "TRIGGER",
      version = 1,
      schedule = { frequency = { MINUTE = 1 } },
    }
  end

  local now = p.input[3]

  local running = new("FilterCondition")
  running:setField("status")
  running:setCondition(new("Condition", "IS_EQUAL_TO"))
  running:setValue("RUNNING")
  local keyed = new("Utils").createFilterCondition("resourceKey.name", "IS_EQUAL_TO", KEY)

  local filter = new("SearchFilter")
  filter:addCondition(running)
  filter:addCondition(keyed)

  local limit = new("QueryLimit")
  limit:setMaxRecords(200)
  limit:setFrom(0)

  local result = adminAPI:listResources(filter, limit, new("ResourceType", "SERVER"))
  print("found " .. result:getTotalCount() .. " running servers with " .. KEY)

  local stopped = 0
  local servers = result:getList()
  for i = 0, servers:size() - 1 do
    local server = servers:get(i)
    local due = shutdownAfter(server)
    if due ~= nil and due <= now then
      adminAPI:changeServerStatus(server:getResourceUUID(), new("ServerStatus", "STOPPED"), true, nil, nil)
      print("stopped " .. server:getResourceName() .. ", due since " .. dates:getString(due, "yyyy-MM-dd HH:mm:ss"))
      stopped = stopped + 1
    end
  end

  return { exitState = "SUCCESS", errorMessage = tostring(stopped) }
end
