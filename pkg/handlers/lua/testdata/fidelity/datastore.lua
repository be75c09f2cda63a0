-- dataStore: each function keeps a private data map between its runs.

function register()
  return { "count_runs", "count_other", "store_too_much" }
end

local function describe(ref)
  return { ref = ref, name = ref, description = "", triggerType = "POST_CREATE", triggerOptions = { "SERVER" },
    api = "TRIGGER", version = 1 }
end

-- count_runs counts its runs and remembers the last server; an input with
-- reset = true forgets everything.
function count_runs(p)
  if p == nil then return describe("count_runs") end
  if p.input:getReset() then
    dataStore:resetPrivateDataMap()
    return { exitState = "SUCCESS", errorMessage = "reset" }
  end
  local data = dataStore:getPrivateDataMap()
  local runs = (data:get("runs") or 0) + 1
  local previous = data:get("last") or "none"
  data:put("runs", runs)
  data:put("last", p.input:getResourceUUID())
  data:put("seen", data:get("seen") or new("List"))
  data:get("seen"):add(p.input:getResourceUUID())
  dataStore:resetPrivateDataMap(data)
  return { exitState = "SUCCESS", errorMessage = runs .. " " .. previous }
end

-- count_other has a map of its own.
function count_other(p)
  if p == nil then return describe("count_other") end
  local data = dataStore.getPrivateDataMap()
  local runs = (data:get("runs") or 0) + 1
  data:put("runs", runs)
  dataStore.resetPrivateDataMap(data)
  return { exitState = "SUCCESS", errorMessage = tostring(runs) }
end

-- store_too_much tries to keep a map over the size limit.
function store_too_much(p)
  if p == nil then return describe("store_too_much") end
  local data = new("Map")
  data:put("blob", string.rep("x", 100000))
  local ok, err = pcall(dataStore.resetPrivateDataMap, dataStore, data)
  if ok then return { exitState = "FAILED", errorMessage = "stored" } end
  local ok2, err2 = pcall(dataStore.resetPrivateDataMap, dataStore, new("List"))
  if ok2 then return { exitState = "FAILED", errorMessage = "stored a list" } end
  return { exitState = "SUCCESS", errorMessage = err .. " | " .. err2 }
end
