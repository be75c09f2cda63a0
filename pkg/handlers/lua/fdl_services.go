package lua

import (
	"context"
	"errors"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/mailer"
)

// The helpers that reach outside the call: dataStore (a private data map
// per function, kept by Options.DataStore), FDLEmailHelper (mail through
// Options.Mail) and translate (Options.Messages).

// DataStore keeps the private data map of each function, by function ref,
// as the JSON of a JSON object; it backs the FDL layer's dataStore. The
// worker's is a JetStream key-value bucket (internal/datastore). Its
// methods are called from many calls at once.
type DataStore interface {
	// Get returns the map of function, nil when it has none.
	Get(ctx context.Context, function string) ([]byte, error)
	// Put replaces the map of function.
	Put(ctx context.Context, function string, data []byte) error
	// Delete removes the map of function; removing none is no error.
	Delete(ctx context.Context, function string) error
}

// errNoDataStore is the error of dataStore calls without a DataStore.
var errNoDataStore = errors.New("no data store: the worker has no JetStream (dataStore keeps its maps in a JetStream key-value bucket)")

// serviceCtx returns the context of a call of a service: the call's, bounded
// by the API timeout.
func (s *compatLayer) serviceCtx() (context.Context, context.CancelFunc) {
	ctx := s.vm.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, s.sh.apiTimeout)
}

func (s *compatLayer) dataStoreMethods() map[string]lua.LGFunction {
	// function returns the ref of the running function, or raises.
	function := func(L *lua.LState, method string) string {
		if s.sh.dataStore == nil {
			L.RaiseError("dataStore.%s: %v", method, errNoDataStore)
		}
		if s.vm.ref == "" {
			L.RaiseError("dataStore.%s: only a call of a function has a data map (not top-level code or a description)", method)
		}
		return s.vm.ref
	}
	return map[string]lua.LGFunction{
		// getPrivateDataMap() -> the function's map, a Map (empty when it has none)
		"getPrivateDataMap": func(L *lua.LState) int {
			ref := function(L, "getPrivateDataMap")
			ctx, cancel := s.serviceCtx()
			defer cancel()
			data, err := s.sh.dataStore.Get(ctx, ref)
			if err != nil {
				L.RaiseError("dataStore.getPrivateDataMap: %v", err)
			}
			if data == nil {
				m := L.NewTable()
				m.Metatable = s.call.objectMT
				L.Push(m)
				return 1
			}
			v, err := s.decode(data)
			if _, ok := v.(*lua.LTable); err != nil || !ok {
				L.RaiseError("dataStore.getPrivateDataMap: the stored map is not a JSON object")
			}
			L.Push(v)
			return 1
		},
		// resetPrivateDataMap(map) replaces the function's map with map;
		// nil or an empty map removes it.
		"resetPrivateDataMap": func(L *lua.LState) int {
			base := s.helperBase(L, "dataStore")
			ref := function(L, "resetPrivateDataMap")
			ctx, cancel := s.serviceCtx()
			defer cancel()
			v := argAt(L, base)
			t, ok := v.(*lua.LTable)
			if v != lua.LNil && (!ok || s.isList(t) || s.enumIsTable(t)) {
				L.ArgError(base, "want a Map (a table of keys and values) or nil")
			}
			var err error
			if !ok || s.isEmpty(t) {
				err = s.sh.dataStore.Delete(ctx, ref)
			} else {
				var data []byte
				if data, err = s.encode(t); err == nil {
					err = s.sh.dataStore.Put(ctx, ref, data)
				}
			}
			if err != nil {
				L.RaiseError("dataStore.resetPrivateDataMap: %v", err)
			}
			return 0
		},
	}
}

// enumIsTable reports whether t is an enum object.
func (s *compatLayer) enumIsTable(t *lua.LTable) bool {
	_, ok := s.enumValue(t)
	return ok
}

// translateMethods is translate: string(key, ...) is the text of key in
// the catalogue, or key itself, with {0}, {1}, ... replaced by the other
// arguments.
func (s *compatLayer) translateMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"string": func(L *lua.LState) int {
			base := s.helperBase(L, "translate")
			key, _ := s.str(L, base)
			text, ok := s.sh.messages[key]
			if !ok {
				text = key
			}
			for i := base + 1; i <= L.GetTop(); i++ {
				arg := L.ToStringMeta(L.Get(i)).String()
				if name, ok := s.enumValue(L.Get(i)); ok {
					arg = name
				}
				text = strings.ReplaceAll(text, "{"+strconv.Itoa(i-base-1)+"}", arg)
			}
			if len(text) > s.sh.maxBytes {
				s.vm.tooLong(L, "translate.string", float64(len(text)))
			}
			L.Push(lua.LString(text))
			return 1
		},
	}
}

// emailMethods is FDLEmailHelper: sendEmail(to, from, replyTo, cc, bcc,
// subject, body [, attachments]), also what calling the helper does. The
// addresses are a string (several separated by commas or semicolons), a
// list of strings, or nil. The message is sent from the relay's configured
// sender; from becomes its Reply-To when replyTo is nil. It returns true,
// or raises the reason it was not sent.
func (s *compatLayer) emailMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{"sendEmail": s.sendEmail}
}

func (s *compatLayer) sendEmail(L *lua.LState) int {
	base := s.helperBase(L, "FDLEmailHelper")
	if s.sh.mail == nil {
		L.RaiseError("FDLEmailHelper: no SMTP relay is configured (the worker's email.host is empty)")
	}
	addrs := func(n int) []string {
		var out []string
		add := func(v lua.LValue) {
			if name, ok := s.enumValue(v); ok {
				v = lua.LString(name)
			}
			str, ok := v.(lua.LString)
			if !ok {
				L.ArgError(n, "want an address, a list of addresses or nil, got a "+v.Type().String())
			}
			for a := range strings.FieldsFuncSeq(string(str), func(r rune) bool { return r == ',' || r == ';' }) {
				if a = strings.TrimSpace(a); a != "" {
					out = append(out, a)
				}
			}
		}
		switch v := argAt(L, n).(type) {
		case *lua.LNilType:
		case *lua.LTable:
			if _, isEnum := s.enumValue(v); isEnum {
				add(v)
				break
			}
			for i := 1; i <= v.Len(); i++ {
				add(v.RawGetInt(i))
			}
		default:
			add(v)
		}
		return out
	}
	text := func(n int) string {
		str, _ := s.str(L, n)
		return str
	}
	m := mailer.Message{To: addrs(base), Cc: addrs(base + 3), Bcc: addrs(base + 4), Subject: text(base + 5), Body: text(base + 6)}
	if replyTo := addrs(base + 2); len(replyTo) > 0 {
		m.ReplyTo = replyTo[0]
	} else if from := addrs(base + 1); len(from) > 0 {
		m.ReplyTo = from[0]
	}
	if att, ok := argAt(L, base+7).(*lua.LTable); (ok && !s.isEmpty(att)) || (!ok && argAt(L, base+7) != lua.LNil) {
		L.ArgError(base+7, "attachments are not supported")
	}
	ctx := s.vm.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := s.sh.mail.Send(ctx, m); err != nil {
		L.RaiseError("FDLEmailHelper.sendEmail: %s", strings.TrimPrefix(err.Error(), "mailer: "))
	}
	L.Push(lua.LTrue)
	return 1
}
