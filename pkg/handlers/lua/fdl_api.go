package lua

import (
	"bytes"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	lua "github.com/yuin/gopher-lua"
)

// The API bridge. adminAPI and userAPI (and new("AdminAPI", ...),
// new("UserAPI", ...)) turn every method call into a NATS request, through
// the Bus of the worker's call, which stamps it with the call's
// Trigger-Origin:
//
//	subject  <APIPrefix>.admin.<method> or <APIPrefix>.user.<method>
//	request  {"args": [...], "sessionUser": "..."}
//	reply    {"result": ...} or {"error": {"code": ..., "message": "..."}}
//
// args are the call's arguments as JSON, value objects by their fields and
// enum objects by their names; sessionUser is there once the script has
// called setSessionUser on that object. The result comes back with methods
// (getList(), getTotalCount(), ...); runListQuery and runAggregationQuery
// return an iterator when it is a list. An error reply, no responder or a
// timeout raises a Lua error, which the script may catch with pcall.
// docs/fdl.md is the contract for whoever serves the subjects.

// The two APIs, as named in subjects.
const (
	apiAdmin = "admin"
	apiUser  = "user"
)

// bridge is the Value of an API object's userdata.
type bridge struct {
	api string // apiAdmin or apiUser
	// global is set for the global adminAPI and userAPI, which all calls
	// share: their session users are the call's.
	global  bool
	session string // set by setSessionUser, when not global
}

func (s *compatLayer) newBridge(api string, global bool) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = &bridge{api: api, global: global}
	ud.Metatable = s.bridgeMT
	return ud
}

func (s *compatLayer) sessionUser(b *bridge) string {
	if b.global {
		return s.call.sessions[b.api]
	}
	return b.session
}

func (s *compatLayer) setSessionUser(b *bridge, user string) {
	if !b.global {
		b.session = user
		return
	}
	if s.call.sessions == nil {
		s.call.sessions = map[string]string{}
	}
	s.call.sessions[b.api] = user
}

// bridgeIndex is the __index of API objects: setSessionUser and
// getSessionUser are local, any other method name is a request.
func (s *compatLayer) bridgeIndex(L *lua.LState) int {
	ud := L.CheckUserData(1)
	b, ok := ud.Value.(*bridge)
	if !ok {
		return 0
	}
	name, ok := L.Get(2).(lua.LString)
	if !ok || !methodName(string(name)) {
		return 0
	}
	method := string(name)
	switch method {
	case "setSessionUser":
		L.Push(s.bind(ud, func(L *lua.LState, base int) int {
			s.setSessionUser(b, L.OptString(base, ""))
			return 0
		}))
	case "getSessionUser":
		L.Push(s.bind(ud, func(L *lua.LState, base int) int {
			if user := s.sessionUser(b); user != "" {
				L.Push(lua.LString(user))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		}))
	default:
		L.Push(s.bind(ud, func(L *lua.LState, base int) int { return s.apiCall(L, b, method, base) }))
	}
	return 1
}

// methodName reports whether name can be a method of the API: a Lua
// identifier, so that it is one subject token.
func methodName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// iterating are the methods whose list results come back as iterators.
var iterating = map[string]bool{"runListQuery": true, "runAggregationQuery": true}

// apiCall sends the request of method with the arguments from base on, and
// pushes the result.
func (s *compatLayer) apiCall(L *lua.LState, b *bridge, method string, base int) int {
	what := b.api + "API." + method
	body := append(make([]byte, 0, 128), `{"args":[`...)
	for i := base; i <= L.GetTop(); i++ {
		if i > base {
			body = append(body, ',')
		}
		v := L.Get(i)
		text := ""
		if n, ok := v.(lua.LNumber); ok {
			text = s.call.numText[n]
		}
		var err error
		if body, err = s.appendJSON(body, v, text, 0); err != nil {
			L.ArgError(i, what+": "+err.Error())
		}
	}
	body = append(body, ']')
	if user := s.sessionUser(b); user != "" {
		body = append(body, `,"sessionUser":`...)
		body = appendString(body, user)
	}
	body = append(body, '}')

	ctx := s.vm.ctx
	c, ok := handlers.CallFrom(ctx)
	if !ok || c.Bus == nil {
		L.RaiseError("%s: %v", what, errLuaNoBus)
	}
	subject := s.sh.prefix + "." + b.api + "." + method
	reply, err := c.Bus.Request(ctx, subject, body, s.sh.apiTimeout)
	if err != nil {
		s.vm.stopIfDone(L)
		L.RaiseError("%s: request on %s: %v", what, subject, err)
	}
	if len(bytes.TrimSpace(reply)) == 0 {
		L.RaiseError("%s: empty reply on %s", what, subject)
	}
	s.vm.charge(decodeFactor * len(reply))
	v, _, err := s.vm.codec.decode(reply)
	if err != nil {
		L.RaiseError("%s: the reply is not JSON: %v", what, err)
	}
	env, ok := v.(*lua.LTable)
	if !ok || s.marked(env) {
		L.RaiseError("%s: the reply is a JSON %s, want an object with result or error", what, jsonKind(s, v))
	}
	if e := env.RawGetString("error"); e != lua.LNil && !isNull(e) {
		L.RaiseError("%s failed: %s", what, apiError(e))
	}
	res := env.RawGetString("result")
	if isNull(res) {
		L.Push(lua.LNil)
		return 1
	}
	s.attach(res, 0)
	if t, ok := res.(*lua.LTable); ok && iterating[method] && s.isList(t) {
		L.Push(s.newIterator(t))
		return 1
	}
	if n, ok := res.(lua.LNumber); ok {
		if text := s.vm.codec.textOf(env, lua.LString("result"), n); text != "" {
			s.noteText(n, text)
		}
	}
	L.Push(res)
	return 1
}

func isNull(v lua.LValue) bool {
	if v == lua.LNil {
		return true
	}
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return false
	}
	_, ok = ud.Value.(nullValue)
	return ok
}

func jsonKind(s *compatLayer, v lua.LValue) string {
	switch x := v.(type) {
	case *lua.LTable:
		if s.marked(x) {
			return "array"
		}
		return "object"
	case lua.LString:
		return "string"
	case lua.LNumber:
		return "number"
	case lua.LBool:
		return "boolean"
	}
	return "null"
}

// apiError formats the error of a reply: {"code": ..., "message": ...}
// or a string.
func apiError(e lua.LValue) string {
	t, ok := e.(*lua.LTable)
	if !ok {
		return lua.LVAsString(e)
	}
	code, msg := t.RawGetString("code"), t.RawGetString("message")
	out := ""
	if lua.LVCanConvToString(code) {
		out = "code " + lua.LVAsString(code)
	}
	if lua.LVCanConvToString(msg) {
		if out != "" {
			out += ": "
		}
		out += lua.LVAsString(msg)
	}
	if out == "" {
		out = "an error without code or message"
	}
	return out
}
