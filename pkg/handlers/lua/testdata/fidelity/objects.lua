-- The Java-object methods of every FDL object, the lists of value objects
-- made on first read, and the full method sets of SearchFilter and
-- QueryLimit. p.input is a server as adminAPI:getResource returns it.

function register()
  return { "object_methods" }
end

local function check(cond, what)
  if not cond then error("failed: " .. what, 2) end
end

function object_methods(p)
  if p == nil then
    return { ref = "object_methods", name = "Object methods", description = "", triggerType = "POST_CREATE",
      triggerOptions = { "SERVER" }, api = "TRIGGER", version = 1 }
  end
  local server = p.input

  -- toJSONString, toString, equals, hashCode, getClass on a resource.
  local json = server:toJSONString()
  check(json == server:toString(), "toJSONString is toString")
  local copy = new("JSON"):decode(json)
  check(server:equals(copy) and copy:equals(server), "equals a decoded copy")
  check(server:hashCode() == copy:hashCode(), "equal objects share hashCode")
  check(type(server:hashCode()) == "number", "hashCode is a number")
  copy:setResourceName("other")
  check(not server:equals(copy), "a changed copy is not equal")
  check(not server:equals("x") and not server:equals(nil), "equals a non-object")
  check(server:getClass():getSimpleName() == "Server", "class of a SERVER")
  check(server:getNics():getClass():getSimpleName() == "List", "class of a list")
  check(server:getProviderValues():getClass():getSimpleName() == "Map", "class of a map")
  check(new("Map"):getClass():getName() == "Map", "class of new Map")
  check(new("Map"):toJSONString() == "{}", "empty map JSON")

  -- Lists.
  local nics = server:getNics()
  check(nics:toJSONString() == '[{"networkUUID":"n-1"}]', "list JSON " .. nics:toJSONString())
  check(nics:equals(new("JSON"):decode('[{"networkUUID":"n-1"}]')), "list equals")
  check(new("List"):equals(new("List")) and new("List"):hashCode() == new("List"):hashCode(), "empty lists")

  -- Enums.
  local status = server:getStatus()
  check(status:toJSONString() == '"RUNNING"', "enum JSON")
  check(status:equals(new("ServerStatus", "RUNNING")) and status:equals("RUNNING"), "enum equals")
  check(status:hashCode() == new("ServerStatus", "RUNNING"):hashCode(), "enum hashCode")
  check(status:getClass():getSimpleName() == "ServerStatus", "enum class")

  -- Value objects: lists made when first read, and class names.
  local limit = new("QueryLimit")
  check(limit:toJSONString() == "{}", "a new QueryLimit sends nothing")
  check(limit:getOrderBy():size() == 0 and limit:getOrderBy():isEmpty(), "orderBy is an empty list")
  check(limit:toJSONString() == '{"orderBy":[]}', "read lists stay")
  check(limit:getClass():getSimpleName() == "QueryLimit", "value object class")
  local template = new("FirewallTemplate")
  check(template:getFirewallInRuleList():size() == 0 and template:getFirewallOutRuleList():size() == 0, "rule lists")

  -- SearchFilter: add, get, remove, clear conditions.
  local filter = new("SearchFilter")
  check(filter:getFilterConditions():size() == 0 and filter:getConditions():size() == 0, "no conditions")
  local function condition(field, value)
    local fc = new("FilterCondition")
    fc:setField(field)
    fc:setCondition(new("Condition", "IS_EQUAL_TO"))
    fc:setValue(value)
    return fc
  end
  local byStatus = condition("status", "RUNNING")
  filter:addCondition(byStatus)
  filter:addFilterCondition(condition("invoiceDate", "2025-01-01"))
  filter:addCondition(condition("invoiceDate", "2025-02-01"))
  check(filter:getConditions():size() == 3, "three conditions")
  check(filter:getCondition("status") == byStatus, "get by field")
  check(filter:getFilterCondition("INVOICEDATE"):getValue():get(0) == "2025-01-01", "get by field, any case")
  check(filter:getCondition(2):getValue():get(0) == "2025-02-01", "get by index")
  check(filter:getCondition("missing") == nil, "get of a missing field")
  check(filter:removeCondition("invoiceDate") == true, "remove by field")
  check(filter:removeCondition("invoiceDate") == false, "nothing left to remove")
  check(filter:getConditions():size() == 1, "one condition left")
  check(filter:toJSONString() == '{"filterConditions":[{"field":"status","condition":"IS_EQUAL_TO","value":["RUNNING"]}]}'
    or filter:equals(new("JSON"):decode('{"filterConditions":[{"field":"status","condition":"IS_EQUAL_TO","value":["RUNNING"]}]}')),
    "filter JSON")
  check(filter:removeFilterCondition(byStatus) == true and filter:getConditions():isEmpty(), "remove an element")
  filter:addCondition(condition("a", 1))
  filter:addCondition(condition("b", 2))
  check(filter:removeCondition(0):getField() == "a", "remove by index returns it")
  filter:clearConditions()
  check(filter:getFilterConditions():isEmpty() and filter:toJSONString() == '{"filterConditions":[]}', "clear")

  -- QueryLimit: add, get, remove, clear orderings.
  local function ordered(field, order)
    local of = new("OrderedField")
    of:setFieldName(field)
    of:setSortOrder(new("ResultOrder", order))
    return of
  end
  limit:setMaxRecords(10)
  limit:addOrderBy(ordered("resourceName", "ASC"))
  limit:addOrderedField(ordered("resourceCreateDate", "DESC"))
  check(limit:getOrderBy():size() == 2, "two orderings")
  check(limit:getOrderBy("resourceCreateDate"):getSortOrder() == new("ResultOrder", "DESC"), "get ordering by field")
  check(limit:getOrderBy(0):getFieldName() == "resourceName", "get ordering by index")
  check(limit:removeOrderBy("resourceName") and limit:getOrderBy():size() == 1, "remove ordering")
  limit:clearOrderBy()
  check(limit:getOrderBy():isEmpty(), "clear orderings")
  check(limit:equals(new("JSON"):decode('{"maxRecords":10,"orderBy":[]}')), "limit JSON " .. limit:toJSONString())
  return { exitState = "SUCCESS" }
end
