package lua

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	lua "github.com/yuin/gopher-lua"
)

// defaultRequestTimeout is the timeout of trigger.request when the
// script gives none.
const defaultRequestTimeout = 5 * time.Second

// triggerTable returns the host API scripts get as the global trigger:
//
//	trigger.log(level, msg [, fields])    level debug|info|warn|error (others: info)
//	trigger.publish(subject, value)       -> true | nil, err
//	trigger.request(subject, value [, timeoutMs]) -> reply | nil, err
//	trigger.json.encode(value)            -> string | nil, err
//	trigger.json.decode(string)           -> value | nil, err
//	trigger.json.array([t])               -> t, marked to encode as a JSON array
//	trigger.null, trigger.json.null       JSON null
//
// publish and request send JSON through the Bus of the worker's call, which
// stamps each message with the call's Trigger-Origin for that message.
func (vm *vmState) triggerTable() *lua.LTable {
	L := vm.L
	t := L.NewTable()
	t.RawSetString("log", L.NewFunction(vm.apiLog))
	t.RawSetString("publish", L.NewFunction(vm.apiPublish))
	t.RawSetString("request", L.NewFunction(vm.apiRequest))
	t.RawSetString("null", vm.codec.null)
	j := L.NewTable()
	j.RawSetString("encode", L.NewFunction(vm.apiEncode))
	j.RawSetString("decode", L.NewFunction(vm.apiDecode))
	j.RawSetString("array", L.NewFunction(vm.apiArray))
	j.RawSetString("null", vm.codec.null)
	t.RawSetString("json", j)
	return t
}

func logLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (vm *vmState) apiLog(L *lua.LState) int {
	level := logLevel(L.CheckString(1))
	msg := L.CheckString(2)
	var attrs []slog.Attr
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		fields := L.CheckTable(3)
		vm.lazy.settleIn(L, fields)
		for k, v := fields.Next(lua.LNil); k != lua.LNil; k, v = fields.Next(k) {
			if !lua.LVCanConvToString(k) {
				L.ArgError(3, "field names must be strings")
			}
			attrs = append(attrs, slog.Any(lua.LVAsString(k), vm.logValue(v)))
		}
	}
	vm.logger().LogAttrs(vm.ctx, level, msg, attrs...)
	return 0
}

// logValue turns a Lua value into what slog prints well.
func (vm *vmState) logValue(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		f := float64(v)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case *lua.LTable, *lua.LUserData:
		data, err := vm.codec.encode(v)
		if err != nil {
			return v.String()
		}
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			return string(data)
		}
		return x
	case *lua.LNilType:
		return nil
	}
	return v.String()
}

// body encodes argument n as the JSON payload of a message.
func (vm *vmState) body(L *lua.LState, n int) []byte {
	data, err := vm.codec.encode(L.Get(n))
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return data
}

func (vm *vmState) apiPublish(L *lua.LState) int {
	subject := L.CheckString(1)
	data := vm.body(L, 2)
	c, ok := handlers.CallFrom(vm.ctx)
	if !ok || c.Bus == nil {
		return failure(L, errLuaNoBus.Error())
	}
	if err := c.Bus.Publish(vm.ctx, subject, data); err != nil {
		return failure(L, err.Error())
	}
	L.Push(lua.LTrue)
	return 1
}

func (vm *vmState) apiRequest(L *lua.LState) int {
	subject := L.CheckString(1)
	data := vm.body(L, 2)
	timeout := defaultRequestTimeout
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		ms := float64(L.CheckNumber(3))
		if !(ms > 0) || ms > float64(math.MaxInt64/time.Millisecond) {
			L.ArgError(3, "the timeout must be a positive number of milliseconds")
		}
		timeout = time.Duration(ms * float64(time.Millisecond))
	}
	c, ok := handlers.CallFrom(vm.ctx)
	if !ok || c.Bus == nil {
		return failure(L, errLuaNoBus.Error())
	}
	reply, err := c.Bus.Request(vm.ctx, subject, data, timeout)
	if err != nil {
		return failure(L, err.Error())
	}
	if len(bytes.TrimSpace(reply)) == 0 {
		return failure(L, "empty reply")
	}
	vm.charge(decodeFactor * len(reply))
	v, _, err := vm.codec.decode(reply)
	if err != nil {
		return failure(L, "reply is not JSON: "+err.Error())
	}
	L.Push(v)
	return 1
}

func (vm *vmState) apiEncode(L *lua.LState) int {
	data, err := vm.codec.encode(L.CheckAny(1))
	if err != nil {
		return failure(L, err.Error())
	}
	vm.charge(len(data))
	L.Push(lua.LString(data))
	return 1
}

func (vm *vmState) apiDecode(L *lua.LState) int {
	s := L.CheckString(1)
	vm.charge(decodeFactor * len(s))
	v, _, err := vm.codec.decode([]byte(s))
	if err != nil {
		return failure(L, err.Error())
	}
	L.Push(v)
	return 1
}

func (vm *vmState) apiArray(L *lua.LState) int {
	t := L.OptTable(1, L.NewTable())
	vm.codec.markArray(t)
	L.Push(t)
	return 1
}

// errLuaNoBus is returned to scripts that publish outside a worker's call.
var errLuaNoBus = errors.New("no bus: not running in a worker's call")

// failure returns nil and msg to the script, Lua's usual way to report a
// failure the caller may handle.
func failure(L *lua.LState, msg string) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	return 2
}
