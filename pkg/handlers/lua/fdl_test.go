package lua_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

const fdlJob = `{"resourceUUID":"j-1","jobType":"CREATE_SERVER","status":"SUCCESSFUL","itemType":"SERVER","itemUUID":"s-1",` +
	`"customerUUID":"c-1","scheduled":false,"info":null,"tags":["a","b"],"id":12345678901234567890,"ref":0,` +
	`"providerValues":{"ACRONIS":{"user":"bob"},"OLD":{"x":1}},"nics":[],"UUID":"u"}`

// TestFDLObjects runs FDL-style bodies against a job input. Each body
// asserts what it checks and returns SUCCESS; wantInput is the modified
// input, "" for none.
func TestFDLObjects(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		body      string
		wantInput string
	}{
		{"getters", fdlJob, `
  local job = p.input
  assert(job:getResourceUUID() == "j-1" and job:getCustomerUUID() == "c-1")
  assert(job:getUUID() == "u", "two capitals keep their case")
  assert(job.itemUUID == "s-1" and p.input.jobType == "CREATE_SERVER", "still a table")
  assert(job:getMissing() == nil and job:getInfo() == nil, "missing and null are nil")
  assert(job:isScheduled() == false)
  assert(job.getItemUUID() == "s-1", "dot call")
  assert(p.user:getEmail() == "u1@example.com" and p.customer:getResourceName() == "Customer 1")`, ""},
		{"enums", fdlJob, `
  local job = p.input
  assert(job:getJobType() == new("JobType", "CREATE_SERVER"), "==")
  assert(job:getJobType() ~= new("JobType", "DELETE_SERVER"), "~=")
  assert(job:getJobType():toString() == "CREATE_SERVER" and job:getJobType():name() == "CREATE_SERVER")
  assert(tostring(job:getStatus()) == "SUCCESSFUL" and job:getStatus() == new("JobStatus", "SUCCESSFUL"))
  assert(job:getItemType() == new("ResourceType", "SERVER"))
  assert("job " .. job:getJobType() .. "!" == "job CREATE_SERVER!", "concat")
  assert(string.format("%s/%d", job:getJobType(), 1) == "CREATE_SERVER/1" and ("%s"):format(job:getStatus()) == "SUCCESSFUL")
  assert(job:getJobType():equals("CREATE_SERVER") and job:getJobType():equals(new("JobType", "CREATE_SERVER")))
  assert(new("ServerStatus", "RUNNING"):ordinal() >= 0)
  assert(job:getJobType() ~= "CREATE_SERVER", "an enum is not a string")
  assert(new("JobType", job:getJobType()) == job:getJobType(), "new from an enum")`, ""},
		{"status by value", `{"s1":{"status":"RUNNING"},"s2":{"status":"ACTIVE"}}`, `
  assert(p.input:getS1():getStatus() == new("ServerStatus", "RUNNING"))
  assert(p.input:getS2():getStatus():toString() == "ACTIVE")`, ""},
		{"lists", fdlJob, `
  local tags = p.input:getTags()
  assert(tags:size() == 2 and tags:get(0) == "a" and tags:get(1) == "b" and not tags:isEmpty())
  assert(p.input.tags:size() == 2, "lists have methods as fields too")
  local it, seen = tags:iterator(), {}
  while it:hasNext() do seen[#seen + 1] = it:next() end
  assert(table.concat(seen) == "ab")
  assert(tags:contains("b") and tags:indexOf("b") == 1 and tags:indexOf("z") == -1)
  local ok, err = pcall(tags.get, tags, 2)
  assert(not ok and err:find("index 2 out of range (size 2)", 1, true), err)
  tags:add("c")
  tags:add(0, "first")
  assert(tags:remove("a") == true and tags:remove(0) == "first")
  tags:set(0, "B")
  local l = new("List")
  assert(l:addAll(tags) and l:size() == 2 and l:toString() == '["B","c"]')
  l:clear()
  assert(l:isEmpty() and l:toString() == "[]")
  assert(p.input:getNics():isEmpty())
  p.input:getNics():add({ resourceUUID = "n-1" })`,
			strings.Replace(strings.Replace(fdlJob, `"tags":["a","b"]`, `"tags":["B","c"]`, 1), `"nics":[]`, `"nics":[{"resourceUUID":"n-1"}]`, 1)},
		{"maps", fdlJob, `
  local pv = p.input:getProviderValues("ACRONIS")
  assert(pv:get("user") == "bob" and pv:containsKey("user") and not pv:containsKey("password"))
  assert(pv:put("password", "****") == nil)
  local all = p.input:getProviderValues()
  assert(all:size() == 2 and all:keySet():size() == 2)
  assert(all:remove("OLD"):get("x") == 1)
  assert(all:values():get(0):get("user") == "bob" and all:containsValue(pv))
  local m = new("Map")
  m:putAll({ a = 1, b = 2 })
  assert(m:size() == 2 and m:toString():find('"a":1'))
  m:clear()
  assert(m:isEmpty() and m:toString() == "{}")`,
			strings.Replace(fdlJob, `{"ACRONIS":{"user":"bob"},"OLD":{"x":1}}`, `{"ACRONIS":{"user":"bob","password":"****"}}`, 1)},
		{"setters", fdlJob, `
  p.input:setItemName("web-1")
  p.input:setJobType(new("JobType", "START_SERVER"))
  p.input:setRef(p.input:getId())
  p.input:setNics({})
  p.input:setScheduled(true)
  p.input:setInfo(nil)
  p.input:addTag("c")`,
			`{"resourceUUID":"j-1","jobType":"START_SERVER","status":"SUCCESSFUL","itemType":"SERVER","itemUUID":"s-1",` +
				`"customerUUID":"c-1","scheduled":true,"info":null,"tags":["a","b","c"],"id":12345678901234567890,"ref":12345678901234567890,` +
				`"providerValues":{"ACRONIS":{"user":"bob"},"OLD":{"x":1}},"nics":[],"UUID":"u","itemName":"web-1"}`},
		{"array input", `[{"resourceUUID":"s-1","tags":[]},"<x/>"]`, `
  assert(p.input:size() == 2 and p.input:get(0):getResourceUUID() == "s-1")
  p.input[1]:setResourceName("web-1")
  p.input:set(1, "<y/>")`,
			`[{"resourceUUID":"s-1","tags":[],"resourceName":"web-1"},"<y/>"]`},
		{"new errors", `{}`, `
  local ok, err = pcall(new, "JobType", "CREATE_SEVER")
  assert(not ok and err:find('unknown JobType "CREATE_SEVER" (did you mean "CREATE_SERVER"?)', 1, true), err)
  ok, err = pcall(new, "SerchFilter")
  assert(not ok and err:find('unknown type "SerchFilter" (did you mean "SearchFilter"?)', 1, true), err)
  ok, err = pcall(new, "JobType")
  assert(not ok and err:find("want a value"), err)
  ok, err = pcall(new, "Condition", "EQUALS")
  assert(not ok and err:find("unknown Condition"), err)
  local fc = new("FilterCondition")
  ok, err = pcall(fc.setCondition, fc, "IS_EQAL_TO")
  assert(not ok and err:find('did you mean "IS_EQUAL_TO"', 1, true), err)
  assert(tostring(adminAPI) == "adminAPI" and tostring(new("UserAPI")) == "userAPI")
  assert(new("searchfilter") ~= nil and new("simplehttp") == simplehttp and new("JSON") == JSON)`, ""},
		{"value objects", `{}`, `
  local fc = new("FilterCondition")
  fc:setField("status")
  fc:setCondition(new("Condition", "IS_EQUAL_TO"))
  fc:setValue("RUNNING")
  fc:addValue(new("ServerStatus", "STOPPED"))
  assert(fc:getCondition() == new("Condition", "IS_EQUAL_TO") and fc:getValue():size() == 2)
  local sf = new("SearchFilter")
  sf:addCondition(fc)
  sf:addCondition(Utils.createFilterCondition("resourceName", "STARTS_WITH", { "web" }))
  local limit = new("QueryLimit")
  limit:setMaxRecords(50)
  limit:setFrom(10)
  local order = new("OrderedField")
  order:setFieldName("resourceName")
  order:setSortOrder(new("ResultOrder", "DESC"))
  limit:addOrderBy(order)
  local m = new("Map")
  m:put("k", new("ResourceType", "DISK"))
  local l = new("List")
  l:add(1)
  p.input = { filter = sf, limit = limit, map = m, list = l, empty = new("List"), none = new("SearchFilter") }`,
			`{"filter":{"filterConditions":[{"value":["RUNNING","STOPPED"],"field":"status","condition":"IS_EQUAL_TO"},` +
				`{"value":["web"],"field":"resourceName","condition":"STARTS_WITH"}]},` +
				`"limit":{"maxRecords":50,"from":10,"orderBy":[{"fieldName":"resourceName","sortOrder":"DESC"}]},` +
				`"map":{"k":"DISK"},"list":[1],"empty":[],"none":{"filterConditions":[]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, tt.body+"\n  return { exitState = \"SUCCESS\" }")
			res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(tt.input))
			if err != nil || res.ExitState != handlers.Success {
				t.Fatalf("Handle() = %+v, %v", res, err)
			}
			if tt.wantInput == "" {
				if res.Input != nil {
					t.Errorf("Handle() input = %s, want none", res.Input)
				}
				return
			}
			if tt.name == "value objects" {
				fdlSameJSON(t, "input", string(res.Input), tt.wantInput)
				return
			}
			if string(res.Input) != tt.wantInput {
				t.Errorf("Handle() input =\n%s\nwant\n%s", res.Input, tt.wantInput)
			}
		})
	}
}

// TestFDLPlainScriptsUnchanged checks that what plain Lua scripts see of p
// is as it was: field access, pairs, #, trigger.json and setmetatable.
func TestFDLPlainScriptsUnchanged(t *testing.T) {
	h := luaFunc(t, `
  local n = 0
  for k, v in pairs(p.input) do n = n + 1 end
  assert(n == 3 and #p.input.tags == 2 and p.input.x == trigger.null)
  assert(p.input.settings == nil and p.input.address == nil and p.input.isolated == nil, "lower-case after a prefix is a field")
  setmetatable(p.input, nil)
  assert(p.input.getTags == nil)
  return { exitState = "SUCCESS", errorMessage = trigger.json.encode(p.input) }`)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4,"tags":["a","b"],"x":null}`))
	if err != nil || res.ErrorMessage != `{"cpu":4,"tags":["a","b"],"x":null}` || res.Input != nil {
		t.Errorf("Handle() = %+v, %v", res, err)
	}
}

// TestFDLCallsAreIsolated checks that a call cannot change what the next
// call on the same state sees.
func TestFDLCallsAreIsolated(t *testing.T) {
	h := luaFunc(t, `
  if p.input.attack then
    getmetatable(p.input).__index = function() return "leak" end
    userAPI:setSessionUser("mallory@example.com/c-9")
    adminAPI = nil
    local ok = pcall(function() getmetatable(JSON).__index = nil end)
    assert(not ok, "helpers are protected")
    ok = pcall(function() simplehttp.newConnection = nil end)
    assert(not ok, "helpers cannot be changed")
    return { exitState = "SUCCESS" }
  end
  assert(p.input:getAttack() == false, "getter")
  assert(adminAPI ~= nil and JSON.encode ~= nil)
  assert(userAPI:getSessionUser() == nil, "session users are the call's")
  return { exitState = "CONTINUE" }`, lua.Options{PoolSize: 1})
	for i, input := range []string{`{"attack":true}`, `{"attack":false}`} {
		if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(input)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestFDLHelpers(t *testing.T) {
	tests := []struct{ name, body string }{
		{"JSON", `
  local j = new("JSON")
  local v = j:decode('{"server":{"nics":[{"ip":"10.0.0.1"}],"n":12345678901234567890,"x":null}}')
  assert(v:getServer():getNics():get(0):getIp() == "10.0.0.1")
  assert(JSON.encode(v) == '{"server":{"nics":[{"ip":"10.0.0.1"}],"n":12345678901234567890,"x":null}}', JSON.encode(v))
  assert(j:encode({ t = new("JobType", "CREATE_SERVER"), l = new("List") }) == '{"t":"CREATE_SERVER","l":[]}' or
         j:encode({ t = new("JobType", "CREATE_SERVER"), l = new("List") }) == '{"l":[],"t":"CREATE_SERVER"}')
  local bad, err = JSON.decode("{")
  assert(bad == nil and err, "bad JSON")
  assert(JSON:decode("null") == nil)`},
		{"Utils", `
  local u = new("Utils")
  assert(u:stringStartsWith("listServers", "list") and Utils.stringStartsWith("getX", "get"))
  assert(not Utils.stringStartsWith(nil, "list") and not Utils.stringStartsWith("changeServerStatus", "list"))
  assert(Utils.stringEndsWith("a.lua", ".lua") and u:stringContains("abc", "b"))
  assert(Utils.stringStartsWith(new("JobType", "CREATE_SERVER"), "CREATE_"))
  local parts = Utils.split("a,b,,c", ",")
  assert(parts:size() == 4 and parts:get(3) == "c" and #parts == 4)
  assert(Utils.split("", ","):isEmpty())
  assert(Utils.trim("  x \n") == "x")
  assert(Utils.roundNumber(2.5) == 3 and Utils.roundNumber(3.14159, 2) == 3.14 and Utils.roundNumber(-2.5) == -3)
  local fc = Utils.createFilterCondition("status", new("Condition", "BETWEEN"), 1, 5)
  assert(fc:getField() == "status" and fc:getCondition():name() == "BETWEEN" and fc:getValue():size() == 2)`},
		{"FDLHashHelper", `
  local h = new("FDLHashHelper")
  assert(h:md5("abc") == "900150983cd24fb0d6963f7d28e17f72")
  assert(FDLHashHelper.sha1("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
  assert(h:sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  assert(h:hmac("HmacSHA256", "key", "The quick brown fox jumps over the lazy dog") ==
    "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
  assert(h:toBase64("hello") == "aGVsbG8=" and h:fromBase64("aGVsbG8=") == "hello")
  assert(h:fromBase64("!!") == nil)
  assert(h:getNamedUUID("hello") == "5d41402a-bc4b-3a76-b971-9d911017c592")
  assert(h:getNamedUUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com") == "5df41881-3aed-3515-88a7-2f4a814cf09e")
  assert(h:getRandomUUID():match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"))`},
		{"FDLDateHelper", `
  local d = new("FDLDateHelper")
  assert(d:getString(0) == "1970-01-01 00:00:00")
  assert(d:getString(1764420000123, "EEE, d MMM yyyy HH:mm:ss.SSS Z") == "Sat, 29 Nov 2025 12:40:00.123 +0000")
  assert(d:getString(1764420000000, "yyyy-MM-dd'T'HH:mmXXX", "+02:00") == "2025-11-29T14:40+02:00")
  assert(d:getTimestamp("2025-11-29 12:40:00") == 1764420000000)
  assert(d:getTimestamp("29/11/2025 02:40 PM", "dd/MM/yyyy hh:mm a") == 1764427200000)
  assert(d:getTimestamp("20251129", "yyyyMMdd") == 1764374400000)
  assert(d:getTimestamp("2025-11-29T14:40:00+02:00") == 1764420000000)
  assert(d:getTimestamp({ year = 2025, month = 11, day = 29, hour = 12, min = 40, sec = 0 }) == 1764420000000)
  assert(d:addDays(0, 2) == 172800000 and d:addHours(0, 1) == 3600000)
  assert(math.abs(d:getTimestamp() - os.time() * 1000) < 5000)
  local ok, err = pcall(d.getTimestamp, d, "2025-13", "yyyy-MM-dd")
  assert(not ok and err:find("cannot read"), err)
  ok, err = pcall(d.getString, d, 0, "yyyy-MM-dd", "Europe/Paris")
  assert(not ok and err:find("unknown zone"), err)`},
		{"FDLXMLHelper", `
  local x = new("FDLXMLHelper")
  local doc = assert(x:parse('<a xmlns:m="urn:m"><b id="1">one</b><b id="2">two</b><m:c/></a>'))
  assert(x:findNode(doc, "a/b"):getText() == "one" and doc:findNode("/a/b[2]") == nil)
  assert(x:findNodes(doc, "a/b"):size() == 2 and x:findNode(doc, "a/c"):getName() == "m:c")
  local a = x:findNode(doc, "a")
  assert(a:findNode("a/b"):getAttribute("id") == "1", "a path may name its start")
  local b2 = x:findNodes(a, "*")
  assert(b2:size() == 3)
  x:setText(b2:get(1), "2 < 3 & more")
  b2:get(0):removeNode()
  local d = x:addNode(a, "d", "text")
  d:setAttribute("q", 'say "hi"')
  x:addTextNode(d, "e", "x")
  assert(tostring(doc) == x:toString(doc))
  assert(x:toString(doc) == '<a xmlns:m="urn:m"><b id="2">2 &lt; 3 &amp; more</b><m:c/><d q="say &quot;hi&quot;">text<e>x</e></d></a>', x:toString(doc))
  local bad, err = x:parse("<a><b></a>")
  assert(bad == nil and err:find("not an XML document"), err)
  assert(x:parse("") == nil and x:parse("<a/><b/>") == nil)
  local ok, err2 = pcall(x.addNode, x, doc, "second")
  assert(not ok and err2:find("root element already"), err2)
  local new_doc = x:createDocument("CONFIG")
  x:addNode(x:findNode(new_doc, "CONFIG"), "meta")
  assert(x:toString(new_doc) == "<CONFIG><meta/></CONFIG>")
  p.input:set(0, doc)
  assert(p.input:get(0) == x:toString(doc))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, tt.body+"\n  return { exitState = \"SUCCESS\" }")
			res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(`["x"]`))
			if err != nil || res.ExitState != handlers.Success {
				t.Fatalf("Handle() = %+v, %v", res, err)
			}
		})
	}
}

func TestFDLSyslog(t *testing.T) {
	h := luaFunc(t, `
  syslog.openlog("backup", syslog.LOG_PID, syslog.LOG_LOCAL0)
  syslog.syslog("LOG_ERR", "it broke")
  new("syslog"):syslog(syslog.LOG_DEBUG, "details")
  syslog.closelog()
  syslog.syslog("plain")
  print("printed", 1)
  return { exitState = "SUCCESS" }`)
	logs := &luaLogs{}
	if _, err := h.Handle(luaCtx(t, nil, logs), luaEvent(`{}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range logs.all() {
		a := luaAttrs(r)
		got = append(got, r.Level.String()+" "+r.Message+" "+a["source"]+" "+a["ident"])
	}
	want := []string{"ERROR it broke syslog backup", "DEBUG details syslog backup", "INFO plain syslog ", "INFO printed\t1 print "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logs = %q, want %q", got, want)
	}
}

// TestFDLLoadTimeUse checks what scripts may use in their top-level code
// and descriptions, where there is no call: everything but the API.
func TestFDLLoadTimeUse(t *testing.T) {
	src := `local JOB = new("JobType", "CREATE_SERVER")
local when = new("FDLDateHelper"):getString(0)
local api = pcall(function() adminAPI:listResources() end)
function register() return { "main" } end
function main(p)
  if p == nil then
    return { ref = "load_time", triggerType = "POST_JOB_STATE_CHANGE", triggerOptions = { "SUCCESSFUL" }, api = "TRIGGER", version = 1 }
  end
  assert(p.input:getJobType() == JOB and when == "1970-01-01 00:00:00" and api == false)
  return { exitState = "SUCCESS" }
end`
	h := luaSource(t, src)[0].Handler
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"jobType":"CREATE_SERVER"}`))
	if err != nil || res.ExitState != handlers.Success {
		t.Errorf("Handle() = %+v, %v", res, err)
	}
	if _, err := lua.LoadScript("does-not-matter.lua", lua.Options{APIPrefix: "a..b"}); !errors.Is(err, handlers.ErrInvalidConfig) {
		t.Errorf("LoadScript(APIPrefix a..b) error = %v, want ErrInvalidConfig", err)
	}
}
