package lua

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"log/slog"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The stateless helpers: JSON, Utils, FDLHashHelper and syslog. Each is a
// userdata shared by all calls (a global of its name, and what new(name)
// returns); its functions work called with : or with .

// str returns argument n as a string: an enum object is its name, nil is
// "" and ok false.
func (s *compatLayer) str(L *lua.LState, n int) (string, bool) {
	v := argAt(L, n)
	if name, ok := s.enumValue(v); ok {
		return name, true
	}
	switch v := v.(type) {
	case lua.LString, lua.LNumber:
		return lua.LVAsString(v), true
	case *lua.LNilType:
		return "", false
	}
	L.ArgError(n, "want a string, got a "+v.Type().String())
	return "", false
}

func (s *compatLayer) jsonMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// encode(value) -> string | nil, err
		"encode": func(L *lua.LState) int {
			base := s.helperBase(L, "JSON")
			data, err := s.encode(L.CheckAny(base))
			if err != nil {
				return failure(L, err.Error())
			}
			L.Push(lua.LString(data))
			return 1
		},
		// decode(string) -> value | nil, err
		"decode": func(L *lua.LState) int {
			base := s.helperBase(L, "JSON")
			v, err := s.decode([]byte(L.CheckString(base)))
			if err != nil {
				return failure(L, err.Error())
			}
			if isNull(v) {
				v = lua.LNil
			}
			L.Push(v)
			return 1
		},
	}
}

// maxParts bounds the list Utils.split makes in one step.
const maxParts = 1 << 20

func (s *compatLayer) utilsMethods() map[string]lua.LGFunction {
	pred := func(f func(s, x string) bool) lua.LGFunction {
		return func(L *lua.LState) int {
			base := s.helperBase(L, "Utils")
			str, ok := s.str(L, base)
			x, _ := s.str(L, base+1)
			L.Push(lua.LBool(ok && f(str, x)))
			return 1
		}
	}
	return map[string]lua.LGFunction{
		"stringStartsWith": pred(strings.HasPrefix),
		"stringEndsWith":   pred(strings.HasSuffix),
		"stringContains":   pred(strings.Contains),
		// split(s, sep) -> list of the parts between the plain separator sep
		"split": func(L *lua.LState) int {
			base := s.helperBase(L, "Utils")
			str, _ := s.str(L, base)
			sep, _ := s.str(L, base+1)
			l := s.newList()
			if str != "" {
				n := strings.Count(str, sep) + 1
				if n > maxParts {
					L.RaiseError("split: more than %d parts", maxParts)
				}
				for _, part := range strings.Split(str, sep) {
					l.Append(lua.LString(part))
				}
			}
			L.Push(l)
			return 1
		},
		"trim": func(L *lua.LState) int {
			base := s.helperBase(L, "Utils")
			str, _ := s.str(L, base)
			L.Push(lua.LString(strings.TrimSpace(str)))
			return 1
		},
		// roundNumber(n [, places]) -> n rounded half away from zero
		"roundNumber": func(L *lua.LState) int {
			base := s.helperBase(L, "Utils")
			n := float64(L.CheckNumber(base))
			places := L.OptInt(base+1, 0)
			if places < 0 || places > 15 {
				L.ArgError(base+1, "want 0 to 15 decimal places")
			}
			p := math.Pow10(places)
			L.Push(lua.LNumber(math.Round(n*p) / p))
			return 1
		},
		// createFilterCondition(field, condition, value...) -> FilterCondition;
		// the values may also come as one list.
		"createFilterCondition": func(L *lua.LState) int {
			base := s.helperBase(L, "Utils")
			fc := s.newValue("FilterCondition")
			field, _ := s.str(L, base)
			cond, ok := s.str(L, base+1)
			if !ok {
				L.ArgError(base+1, "want a Condition")
			}
			if err := checkEnum("Condition", cond); err != "" {
				L.ArgError(base+1, err)
			}
			fc.RawSetString("field", lua.LString(field))
			fc.RawSetString("condition", lua.LString(cond))
			values := fc.RawGetString("value").(*lua.LTable)
			if t, ok := argAt(L, base+2).(*lua.LTable); ok && L.GetTop() == base+2 && s.valueType(t) == "" {
				if _, isEnum := s.enumValue(t); !isEnum {
					for i := 1; i <= t.Len(); i++ {
						s.store(values, lua.LNumber(i), t.RawGetInt(i))
					}
					L.Push(fc)
					return 1
				}
			}
			for i := base + 2; i <= L.GetTop(); i++ {
				s.store(values, lua.LNumber(values.Len()+1), L.Get(i))
			}
			L.Push(fc)
			return 1
		},
	}
}

// hashes are the hash functions of FDLHashHelper, by lower-case name.
var hashes = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New,
}

func (s *compatLayer) hashMethods() map[string]lua.LGFunction {
	hexOf := func(name string) lua.LGFunction {
		return func(L *lua.LState) int {
			base := s.helperBase(L, "FDLHashHelper")
			h := hashes[name]()
			h.Write([]byte(L.CheckString(base)))
			L.Push(lua.LString(hex.EncodeToString(h.Sum(nil))))
			return 1
		}
	}
	return map[string]lua.LGFunction{
		"md5":    hexOf("md5"),
		"sha1":   hexOf("sha1"),
		"sha256": hexOf("sha256"),
		"sha512": hexOf("sha512"),
		// hmac(algorithm, key, data) -> hex; algorithm md5, sha1, sha256 or
		// sha512 (HmacSHA256 and the like too)
		"hmac": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLHashHelper")
			alg := strings.ToLower(strings.ReplaceAll(L.CheckString(base), "-", ""))
			alg = strings.TrimPrefix(alg, "hmac")
			h, ok := hashes[alg]
			if !ok {
				L.ArgError(base, "unknown algorithm (want md5, sha1, sha256 or sha512)")
			}
			mac := hmac.New(h, []byte(L.CheckString(base+1)))
			mac.Write([]byte(L.CheckString(base + 2)))
			L.Push(lua.LString(hex.EncodeToString(mac.Sum(nil))))
			return 1
		},
		"toBase64": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLHashHelper")
			L.Push(lua.LString(base64.StdEncoding.EncodeToString([]byte(L.CheckString(base)))))
			return 1
		},
		// fromBase64(s) -> string | nil, err
		"fromBase64": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLHashHelper")
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(L.CheckString(base)))
			if err != nil {
				return failure(L, "not base64: "+err.Error())
			}
			L.Push(lua.LString(data))
			return 1
		},
		// getNamedUUID(name) -> the name-based (MD5, version 3) UUID of
		// name; getNamedUUID(namespaceUUID, name) puts the namespace first,
		// as RFC 9562 does.
		"getNamedUUID": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLHashHelper")
			var data []byte
			if L.GetTop() > base {
				ns, ok := parseUUID(L.CheckString(base))
				if !ok {
					L.ArgError(base, "the namespace is not a UUID")
				}
				data = append(ns[:], L.CheckString(base+1)...)
			} else {
				data = []byte(L.CheckString(base))
			}
			sum := md5.Sum(data)
			sum[6] = sum[6]&0x0f | 0x30
			sum[8] = sum[8]&0x3f | 0x80
			L.Push(lua.LString(formatUUID(sum)))
			return 1
		},
		"getRandomUUID": func(L *lua.LState) int {
			var b [16]byte
			_, _ = rand.Read(b[:])
			b[6] = b[6]&0x0f | 0x40
			b[8] = b[8]&0x3f | 0x80
			L.Push(lua.LString(formatUUID(b)))
			return 1
		},
	}
}

func formatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func parseUUID(s string) ([16]byte, bool) {
	var b [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return b, false
	}
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return b, false
	}
	return b, true
}

// syslogLevels are the syslog priorities, by name and number.
var syslogLevels = []string{"LOG_EMERG", "LOG_ALERT", "LOG_CRIT", "LOG_ERR", "LOG_WARNING", "LOG_NOTICE", "LOG_INFO", "LOG_DEBUG"}

// syslogLevel maps a syslog priority to a slog level.
func syslogLevel(v lua.LValue) slog.Level {
	n := 6
	switch v := v.(type) {
	case lua.LNumber:
		n = int(v) & 7
	case lua.LString:
		name := strings.ToUpper(string(v))
		if !strings.HasPrefix(name, "LOG_") {
			name = "LOG_" + name
		}
		switch name {
		case "LOG_WARN":
			name = "LOG_WARNING"
		case "LOG_ERROR":
			name = "LOG_ERR"
		}
		for i, l := range syslogLevels {
			if l == name {
				n = i
			}
		}
	}
	switch {
	case n <= 3:
		return slog.LevelError
	case n == 4:
		return slog.LevelWarn
	case n == 7:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// syslogMethods route syslog to the call's structured log:
// syslog.openlog(ident [, option, facility]), syslog.syslog(priority, msg)
// (or syslog.syslog(msg)), syslog.closelog(). Priorities are LOG_ERR and
// the like, as strings, numbers or the module's constants.
func (s *compatLayer) syslogMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"openlog": func(L *lua.LState) int {
			base := s.helperBase(L, "syslog")
			s.call.ident = L.OptString(base, "")
			return 0
		},
		"closelog": func(L *lua.LState) int {
			s.call.ident = ""
			return 0
		},
		"syslog": func(L *lua.LState) int {
			base := s.helperBase(L, "syslog")
			prio, msg := lua.LValue(lua.LNumber(6)), argAt(L, base)
			if L.GetTop() > base {
				prio, msg = L.Get(base), L.Get(base+1)
			}
			attrs := []slog.Attr{slog.String("source", "syslog")}
			if s.call.ident != "" {
				attrs = append(attrs, slog.String("ident", s.call.ident))
			}
			s.vm.logger().LogAttrs(s.vm.ctx, syslogLevel(prio), L.ToStringMeta(msg).String(), attrs...)
			return 0
		},
	}
}

// syslogConstants adds LOG_EMERG ... LOG_DEBUG and the facilities to the
// syslog helper's table t.
func syslogConstants(t *lua.LTable) {
	for i, name := range syslogLevels {
		t.RawSetString(name, lua.LNumber(i))
	}
	for i, name := range []string{"LOG_KERN", "LOG_USER", "LOG_MAIL", "LOG_DAEMON", "LOG_AUTH", "LOG_SYSLOG", "LOG_LPR", "LOG_NEWS"} {
		t.RawSetString(name, lua.LNumber(i<<3))
	}
	for i := range 8 {
		t.RawSetString("LOG_LOCAL"+string(rune('0'+i)), lua.LNumber((16+i)<<3))
	}
	for i, name := range []string{"LOG_PID", "LOG_CONS", "LOG_ODELAY", "LOG_NDELAY", "LOG_NOWAIT", "LOG_PERROR"} {
		t.RawSetString(name, lua.LNumber(int(1)<<i))
	}
}
