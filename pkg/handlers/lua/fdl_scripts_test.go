package lua_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// fdlBus is a handlers.Bus over a NATS connection that stamps every message
// with the call's Trigger-Origin, as the worker's Bus (pkg/worker/bus.go)
// does. pkg/handlers cannot import pkg/worker, so the tests carry this small
// copy; what it sends goes through a real NATS server.
type fdlBus struct {
	nc     *nats.Conn
	origin string
}

var _ handlers.Bus = (*fdlBus)(nil)

func (b *fdlBus) msg(subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(subjects.HeaderOrigin, b.origin)
	return m
}

func (b *fdlBus) Publish(ctx context.Context, subject string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.nc.PublishMsg(b.msg(subject, data))
}

func (b *fdlBus) Request(ctx context.Context, subject string, data []byte, timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	reply, err := b.nc.RequestMsgWithContext(ctx, b.msg(subject, data))
	if err != nil {
		return nil, err
	}
	return reply.Data, nil
}

// callState is a request the API responder got.
type callState struct {
	Subject string
	Origin  string
	Body    string
}

// fdlRequest is the body of an API request.
type fdlRequest struct {
	Args        []json.RawMessage `json:"args"`
	SessionUser *string           `json:"sessionUser"`
}

// fdlAPI is an orchestrator API stand-in: it answers the requests on
// subject with reply (nil: no reply) and records them.
type fdlAPI struct {
	mu    sync.Mutex
	calls []callState
}

func (a *fdlAPI) got() []callState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]callState(nil), a.calls...)
}

// fdlStartAPI starts a NATS server with an API responder on subject and
// returns it with a Bus of origin on another connection.
func fdlStartAPI(t *testing.T, subject string, reply func(subject string, req fdlRequest) any) (*fdlAPI, *fdlBus) {
	t.Helper()
	s := natstest.RunServer(t)
	srv := natstest.Connect(t, s)
	api := &fdlAPI{}
	_, err := srv.Subscribe(subject, func(m *nats.Msg) {
		api.mu.Lock()
		api.calls = append(api.calls, callState{Subject: m.Subject, Origin: m.Header.Get(subjects.HeaderOrigin), Body: string(m.Data)})
		api.mu.Unlock()
		var req fdlRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			_ = m.Respond([]byte(`{"error":{"code":"BAD_REQUEST","message":"` + err.Error() + `"}}`))
			return
		}
		out := reply(m.Subject, req)
		if out == nil {
			return
		}
		data, ok := out.(string)
		if !ok {
			b, err := json.Marshal(out)
			if err != nil {
				panic(err)
			}
			data = string(b)
		}
		_ = m.Respond([]byte(data))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	return api, &fdlBus{nc: natstest.Connect(t, s), origin: "TEST/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"}
}

// fdlCallCtx returns the context of a worker's call with bus, logging to
// logs.
func fdlCallCtx(t *testing.T, bus *fdlBus, logs *luaLogs) context.Context {
	t.Helper()
	c := handlers.Call{Ref: "test"}
	if bus != nil {
		c.Bus, c.Origin = bus, bus.origin
	}
	if logs != nil {
		c.Logger = slog.New(logs)
	}
	return handlers.WithCall(t.Context(), c)
}

// fdlSameJSON fails t unless got and want are the same JSON value.
func fdlSameJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s = %s: not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s =\n%s\nwant\n%s", what, got, want)
	}
}

func fdlMessages(logs *luaLogs) []string {
	var out []string
	for _, r := range logs.all() {
		out = append(out, r.Message)
	}
	return out
}

// fdlScripts loads testdata/fdl and returns its functions by ref.
func fdlScripts(t *testing.T, opts lua.Options) map[string]lua.ScriptFunction {
	t.Helper()
	dir := filepath.Join("testdata", "fdl")
	fns, err := lua.LoadScripts(dir, opts)
	if err != nil {
		t.Fatalf("LoadScripts(%s) error = %v", dir, err)
	}
	luaCloseAll(t, fns)
	byRef := map[string]lua.ScriptFunction{}
	for _, f := range fns {
		byRef[f.Ref] = f
	}
	return byRef
}

func TestFDLScriptsLoad(t *testing.T) {
	byRef := fdlScripts(t, lua.Options{})
	var got []string
	for _, f := range byRef {
		got = append(got, fmt.Sprintf("%s %s %s %v %d %v", f.Ref, f.Entry, f.TriggerType, f.TriggerOptions, f.Priority, f.Schedule))
	}
	want := []string{
		"audit_user_api audit_user_api POST_USER_API_CALL [ANY] 0 map[]",
		"auto_start_server auto_start_server POST_JOB_STATE_CHANGE [SUCCESSFUL] 0 map[]",
		"backup_cleanup_on_delete on_server_deleting POST_SERVER_STATE_CHANGE [DELETING] 0 map[]",
		"backup_on_job on_job_done POST_JOB_STATE_CHANGE [SUCCESSFUL] 0 map[]",
		"metadata_backup metadata_backup PRE_SERVER_METADATA_UPDATE [ANY] -8000 map[]",
		"nightly_cleanup nightly_cleanup SCHEDULED [ANY] 0 map[frequency:map[HOUR:24] start:map[HOUR:0 MINUTE:0 SECOND:0]]",
		"pre_set_warning_level pre_set_warning_level PRE_CREATE [CUSTOMER] 0 map[]",
		"shutdown_sweep shutdown_sweep SCHEDULED [ANY] 0 map[frequency:map[MINUTE:1]]",
	}
	slices.Sort(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadScripts(testdata/fdl) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A nil return and a table without exitState are CONTINUE.
	for _, ref := range []string{"backup_cleanup_on_delete", "backup_on_job"} {
		res, err := byRef[ref].Handler.Handle(luaCtx(t, nil, nil), luaEvent(`{"resourceUUID":"s-1"}`))
		if err != nil || res.ExitState != handlers.Continue {
			t.Errorf("%s = %+v, %v; want CONTINUE", ref, res, err)
		}
	}
}

func TestFDLScriptAutoStart(t *testing.T) {
	api, bus := fdlStartAPI(t, "fco.api.>", func(subject string, req fdlRequest) any {
		return map[string]any{"result": map[string]any{"resourceUUID": "j-2", "jobType": "START_SERVER", "status": "IN_PROGRESS"}}
	})
	h := fdlScripts(t, lua.Options{})["auto_start_server"].Handler
	event := func(jobType, customer string) *event.Event {
		ev := luaEvent(`{"resourceUUID":"j-1","jobType":"` + jobType + `","status":"SUCCESSFUL","itemType":"SERVER",` +
			`"itemUUID":"s-1","itemName":"web-1","customerUUID":"c-1","info":null}`)
		ev.TriggerType, ev.TriggerOption = "POST_JOB_STATE_CHANGE", "SUCCESSFUL"
		ev.Customer = json.RawMessage(customer)
		ev.User = json.RawMessage(`{"resourceUUID":"u-1","email":"alice@example.com"}`)
		return ev
	}
	const wants = `{"resourceUUID":"c-1","resourceKey":[{"name":"auto_start","value":"true"}]}`

	logs := &luaLogs{}
	res, err := h.Handle(fdlCallCtx(t, bus, logs), event("CREATE_SERVER", wants))
	if err != nil || res.ExitState != handlers.Success || res.Input != nil {
		t.Fatalf("auto_start(CREATE_SERVER) = %+v, %v; want SUCCESS", res, err)
	}
	calls := api.got()
	if len(calls) != 1 || calls[0].Subject != "fco.api.user.changeServerStatus" || calls[0].Origin != bus.origin {
		t.Fatalf("API calls = %+v, want one on fco.api.user.changeServerStatus with Trigger-Origin %q", calls, bus.origin)
	}
	fdlSameJSON(t, "request", calls[0].Body, `{"args":["s-1","RUNNING",true,null,null],"sessionUser":"alice@example.com/c-1"}`)
	if msgs := fdlMessages(logs); len(msgs) != 1 || msgs[0] != "started server web-1 with job j-2 (IN_PROGRESS)" {
		t.Errorf("logs = %q", msgs)
	}

	for _, tt := range []struct{ name, jobType, customer string }{
		{"other job", "START_SERVER", wants},
		{"key off", "CREATE_SERVER", `{"resourceUUID":"c-1","resourceKey":[{"name":"auto_start","value":"false"}]}`},
		{"no keys", "CREATE_SERVER", `{"resourceUUID":"c-1"}`},
	} {
		res, err := h.Handle(fdlCallCtx(t, bus, nil), event(tt.jobType, tt.customer))
		if err != nil || res.ExitState != handlers.Continue {
			t.Errorf("auto_start(%s) = %+v, %v; want CONTINUE", tt.name, res, err)
		}
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("API calls = %d, want still 1", n)
	}
}

func TestFDLScriptShutdownSweep(t *testing.T) {
	const now = 1764453600042
	api, bus := fdlStartAPI(t, "fco.api.>", func(subject string, req fdlRequest) any {
		switch subject {
		case "fco.api.admin.listResources":
			server := func(uuid, name, due string) map[string]any {
				return map[string]any{"resourceUUID": uuid, "resourceName": name, "status": "RUNNING",
					"resourceKey": []any{map[string]any{"name": "owner", "value": "ops"}, map[string]any{"name": "shutdown_after", "value": due}}}
			}
			return map[string]any{"result": map[string]any{"totalCount": 2, "list": []any{
				server("s-1", "web-1", "1764453000000"), server("s-2", "web-2", "1864453000000"),
			}}}
		case "fco.api.admin.changeServerStatus":
			return `{"result":{"resourceUUID":"j-9","status":"IN_PROGRESS"}}`
		}
		return `{"error":{"code":"NOT_IMPLEMENTED","message":"` + subject + `"}}`
	})
	h := fdlScripts(t, lua.Options{})["shutdown_sweep"].Handler
	ev := luaEvent(fmt.Sprintf(`[%d,60000,%d]`, now-42, now))
	ev.TriggerType, ev.TriggerOption = "SCHEDULED", "ANY"
	logs := &luaLogs{}
	res, err := h.Handle(fdlCallCtx(t, bus, logs), ev)
	if err != nil || res.ExitState != handlers.Success || res.ErrorMessage != "1" || res.Input != nil {
		t.Fatalf("shutdown_sweep = %+v, %v; want SUCCESS having stopped 1 server", res, err)
	}
	calls := api.got()
	if len(calls) != 2 {
		t.Fatalf("API calls = %+v, want listResources and changeServerStatus", calls)
	}
	if calls[0].Subject != "fco.api.admin.listResources" || calls[0].Origin != bus.origin {
		t.Errorf("call 1 = %+v", calls[0])
	}
	fdlSameJSON(t, "listResources request", calls[0].Body, `{"args":[
		{"filterConditions":[
			{"field":"status","condition":"IS_EQUAL_TO","value":["RUNNING"]},
			{"field":"resourceKey.name","condition":"IS_EQUAL_TO","value":["shutdown_after"]}]},
		{"maxRecords":200,"from":0},
		"SERVER"]}`)
	if calls[1].Subject != "fco.api.admin.changeServerStatus" || calls[1].Origin != bus.origin {
		t.Errorf("call 2 = %+v", calls[1])
	}
	fdlSameJSON(t, "changeServerStatus request", calls[1].Body, `{"args":["s-1","STOPPED",true,null,null]}`)
	want := []string{"found 2 running servers with shutdown_after", "stopped web-1, due since 2025-11-29 21:50:00"}
	if got := fdlMessages(logs); !reflect.DeepEqual(got, want) {
		t.Errorf("logs = %q, want %q", got, want)
	}
}

func TestFDLScriptWarningLevel(t *testing.T) {
	h := fdlScripts(t, lua.Options{})["pre_set_warning_level"].Handler
	ev := luaEvent(`{"resourceName":"acme","warningLevel":100,"limits":[],"id":12345678901234567890}`)
	ev.TriggerOption = "CUSTOMER"
	res, err := h.Handle(luaCtx(t, nil, nil), ev)
	want := `{"resourceName":"acme","warningLevel":500,"limits":[],"id":12345678901234567890}`
	if err != nil || res.ExitState != handlers.Success || string(res.Input) != want {
		t.Errorf("pre_set_warning_level = %+v (%s), %v; want SUCCESS with %s", res, res.Input, err, want)
	}
	ev.Input = json.RawMessage(`{"resourceName":"acme"}`)
	res, err = h.Handle(luaCtx(t, nil, nil), ev)
	if want := `{"resourceName":"acme","warningLevel":500}`; err != nil || string(res.Input) != want {
		t.Errorf("pre_set_warning_level(no level) = %+v (%s), %v; want %s", res, res.Input, err, want)
	}
}

func TestFDLScriptMetadata(t *testing.T) {
	h := fdlScripts(t, lua.Options{})["metadata_backup"].Handler
	const server = `{"resourceUUID":"s-1","customerUUID":"c-1","resourceName":"web-1"}`
	const doc = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<CONFIG><meta><server><system><hostname>web &amp; db</hostname></system></server></meta><!-- boot --></CONFIG>`
	input, _ := json.Marshal([]any{json.RawMessage(server), doc})
	ev := luaEvent(string(input))
	ev.TriggerType, ev.TriggerOption = "PRE_SERVER_METADATA_UPDATE", "ANY"
	res, err := h.Handle(luaCtx(t, nil, nil), ev)
	if err != nil || res.ExitState != handlers.Continue || res.Input == nil {
		t.Fatalf("metadata_backup = %+v, %v; want CONTINUE with a modified input", res, err)
	}
	var got []json.RawMessage
	if err := json.Unmarshal(res.Input, &got); err != nil || len(got) != 2 {
		t.Fatalf("modified input = %s, want [server, document]", res.Input)
	}
	if string(got[0]) != server {
		t.Errorf("server = %s, want it unchanged", got[0])
	}
	sum := sha256.Sum256([]byte("s-1/c-1"))
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<CONFIG><meta><server><system><hostname>web &amp; db</hostname>` +
		`<backup enabled="true"><server>s-1</server><token>` + hex.EncodeToString(sum[:]) + `</token></backup>` +
		`</system></server></meta><!-- boot --></CONFIG>`
	var gotDoc string
	if err := json.Unmarshal(got[1], &gotDoc); err != nil || gotDoc != want {
		t.Errorf("document =\n%s\nwant\n%s", got[1], want)
	}

	ev.Input = json.RawMessage(`[` + server + `,"<CONFIG><meta>"]`)
	logs := &luaLogs{}
	res, err = h.Handle(fdlCallCtx(t, nil, logs), ev)
	if err != nil || res.ExitState != handlers.Continue || res.Input != nil {
		t.Errorf("metadata_backup(bad XML) = %+v, %v; want CONTINUE, unchanged", res, err)
	}
	if msgs := fdlMessages(logs); len(msgs) != 1 || !strings.Contains(msgs[0], "is not XML") {
		t.Errorf("logs = %q", msgs)
	}
}

func TestFDLScriptAudit(t *testing.T) {
	type hit struct {
		origin, contentType, body string
	}
	hits := make(chan hit, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hit{r.Header.Get("Trigger-Origin"), r.Header.Get("Content-Type"), string(body)}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "queued")
	}))
	t.Cleanup(srv.Close)

	h := fdlScripts(t, lua.Options{})["audit_user_api"].Handler
	ev := func(method string) *event.Event {
		ev := luaEvent(`{"resourceUUID":"s-1"}`)
		ev.TriggerType, ev.TriggerOption = "POST_USER_API_CALL", method
		ev.Customer = json.RawMessage(`{"resourceUUID":"c-1","resourceKey":[{"name":"audit_url","value":"` + srv.URL + `/audit"}]}`)
		return ev
	}
	ctx := luaCtx(t, nil, nil)
	for _, method := range []string{"listServers", "getResource"} {
		res, err := h.Handle(ctx, ev(method))
		if err != nil || res.ExitState != handlers.Continue {
			t.Errorf("audit(%s) = %+v, %v; want CONTINUE", method, res, err)
		}
	}
	res, err := h.Handle(ctx, ev("changeServerStatus"))
	if err != nil || res.ExitState != handlers.Success || res.ErrorMessage != "202 queued" {
		t.Fatalf("audit(changeServerStatus) = %+v, %v; want SUCCESS, 202 queued", res, err)
	}
	got := natstest.ChanRecv(t, hits, luaBound)
	if got.origin != "test/01JDQ7Z6W3S6K4V0Q5H3YB3M8C" || got.contentType != "application/json" {
		t.Errorf("request headers: Trigger-Origin %q, Content-Type %q", got.origin, got.contentType)
	}
	stamp := time.UnixMilli(1764420000000).UTC().Format("2006-01-02T15:04:05.000Z")
	fdlSameJSON(t, "audit body", got.body,
		`{"method":"changeServerStatus","customer":"c-1","user":"u1@example.com","time":"`+stamp+`"}`)
	select {
	case h := <-hits:
		t.Errorf("unexpected request %+v", h)
	default:
	}
}

func TestFDLAPIBridge(t *testing.T) {
	api, bus := fdlStartAPI(t, "fco.api.>", func(subject string, req fdlRequest) any {
		switch subject {
		case "fco.api.admin.getResource":
			return `{"result":{"resourceUUID":"s-1","status":"STOPPED","id":12345678901234567890,"nics":[]}}`
		case "fco.api.admin.missing":
			return `{"error":{"code":"NOT_FOUND","message":"no such server"}}`
		case "fco.api.admin.runListQuery":
			return `{"result":[{"resourceName":"a"},{"resourceName":"b"}]}`
		case "fco.api.admin.nothing":
			return `{"result":null}`
		case "fco.api.admin.garbage":
			return `not json`
		case "fco.api.admin.list":
			return `[1,2]`
		case "fco.api.admin.slow":
			return nil
		}
		return `{"result":true}`
	})
	h := luaFunc(t, `
  local s = adminAPI:getResource(p.input:getId(), new("ResourceType", "SERVER"), true)
  assert(s:getStatus() == new("ServerStatus", "STOPPED"), "status")
  assert(s:getNics():isEmpty(), "nics")
  local ok, err = pcall(function() return adminAPI:missing("s-9") end)
  assert(not ok and err:find("adminAPI.missing failed: code NOT_FOUND: no such server", 1, true), err)
  local it = new("AdminAPI", "5.0"):runListQuery(new("Query"), new("QueryLimit"), "SERVER")
  local names = {}
  while it:hasNext() do names[#names + 1] = it:next():getResourceName() end
  assert(table.concat(names, ",") == "a,b", "iterator")
  assert(adminAPI:nothing() == nil, "null result")
  ok, err = pcall(adminAPI.garbage)
  assert(not ok and err:find("not JSON"), err)
  ok, err = pcall(adminAPI.list, adminAPI)
  assert(not ok and err:find("want an object"), err)
  ok, err = pcall(adminAPI.slow, adminAPI)
  assert(not ok and err:find("adminAPI.slow: request on fco.api.admin.slow"), err)
  assert(adminAPI["bad.method"] == nil and adminAPI["x>"] == nil, "subject injection")
  ok, err = pcall(adminAPI.getResource, adminAPI, print)
  assert(not ok and err:find("function"), err)

  userAPI:setSessionUser("alice@example.com/c-1")
  assert(userAPI:getSessionUser() == "alice@example.com/c-1")
  local other = new("UserAPI")
  assert(other:getSessionUser() == nil, "sessions are per object")
  userAPI:deleteResource("s-1", true)
  other.deleteResource("s-2")
  return { exitState = "SUCCESS" }`, lua.Options{APITimeout: 300 * time.Millisecond})
	res, err := luaCallWithin(t, fdlCallCtx(t, bus, nil), h, luaEvent(`{"id":12345678901234567890}`))
	if err != nil || res.ExitState != handlers.Success {
		t.Fatalf("Handle() = %+v, %v", res, err)
	}
	want := []callState{
		{"fco.api.admin.getResource", bus.origin, `{"args":[12345678901234567890,"SERVER",true]}`},
		{"fco.api.admin.missing", bus.origin, `{"args":["s-9"]}`},
		{"fco.api.admin.runListQuery", bus.origin, `{"args":[{},{},"SERVER"]}`},
		{"fco.api.admin.nothing", bus.origin, `{"args":[]}`},
		{"fco.api.admin.garbage", bus.origin, `{"args":[]}`},
		{"fco.api.admin.list", bus.origin, `{"args":[]}`},
		{"fco.api.admin.slow", bus.origin, `{"args":[]}`},
		{"fco.api.user.deleteResource", bus.origin, `{"args":["s-1",true],"sessionUser":"alice@example.com/c-1"}`},
		{"fco.api.user.deleteResource", bus.origin, `{"args":["s-2"]}`},
	}
	if got := api.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("API calls =\n%v\nwant\n%v", got, want)
	}
}

func TestFDLAPIBridgeErrors(t *testing.T) {
	_, bus := fdlStartAPI(t, "fco.api.>", func(string, fdlRequest) any { return `{"result":1}` })
	tests := []struct {
		name string
		opts lua.Options
		bus  *fdlBus
		want string
	}{
		{"no responder", lua.Options{APIPrefix: "nobody.api"}, bus, "adminAPI.getResource: request on nobody.api.admin.getResource: nats: no responders"},
		{"no bus", lua.Options{}, nil, "adminAPI.getResource: no bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, `
  local ok, err = pcall(function() return adminAPI:getResource("s-1") end)
  assert(not ok)
  return { exitState = "SUCCESS", errorMessage = err }`, tt.opts)
			var ctx context.Context
			if tt.bus != nil {
				ctx = fdlCallCtx(t, tt.bus, nil)
			} else {
				ctx = luaCtx(t, nil, nil)
			}
			res, err := luaCallWithin(t, ctx, h, luaEvent(`{}`))
			if err != nil || !strings.Contains(res.ErrorMessage, tt.want) {
				t.Errorf("error = %q, %v; want it to contain %q", res.ErrorMessage, err, tt.want)
			}
		})
	}

	// An API call that is not caught fails the call with a *Error.
	h := luaFunc(t, `  adminAPI:getResource("s-1")`, lua.Options{APIPrefix: "nobody.api"})
	_, err := luaCallWithin(t, fdlCallCtx(t, bus, nil), h, luaEvent(`{}`))
	var lerr *lua.Error
	if !errors.As(err, &lerr) || lerr.Line != luaBodyLine || !strings.Contains(lerr.Message, "no responders") {
		t.Errorf("Handle() error = %v, want a *lua.Error at line %d about no responders", err, luaBodyLine)
	}
}

func TestFDLAPIPrefix(t *testing.T) {
	api, bus := fdlStartAPI(t, "eu1.>", func(string, fdlRequest) any { return `{"result":"ok"}` })
	h := luaFunc(t, `  return { exitState = "SUCCESS", errorMessage = userAPI:ping() }`, lua.Options{APIPrefix: "eu1.fco"})
	res, err := luaCallWithin(t, fdlCallCtx(t, bus, nil), h, luaEvent(`{}`))
	if err != nil || res.ErrorMessage != "ok" {
		t.Fatalf("Handle() = %+v, %v", res, err)
	}
	if got := api.got(); len(got) != 1 || got[0].Subject != "eu1.fco.user.ping" {
		t.Errorf("API calls = %v, want one on eu1.fco.user.ping", got)
	}
	if _, err := lua.LoadScript(filepath.Join("testdata", "fdl", "warning_level.lua"), lua.Options{APIPrefix: "fco.*"}); !errors.Is(err, handlers.ErrInvalidConfig) {
		t.Errorf("LoadScript(APIPrefix fco.*) error = %v, want ErrInvalidConfig", err)
	}
}
