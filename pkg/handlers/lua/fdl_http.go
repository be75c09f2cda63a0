package lua

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/netguard"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// simplehttp: FDL's HTTP client, on net/http with the limits of the webhook
// kind: a timeout per request (HTTPOptions.Timeout, capped by the call's
// deadline), no redirects followed (a 3xx is returned as it is), a cap on
// the response body, TLS 1.2 or later with verified certificates, no proxy,
// no cookies, and optionally no connection to non-public addresses (the
// webhook kind's dial check). Every request carries the call's
// Trigger-Origin.
//
//	local http = new("simplehttp")          -- or the global simplehttp
//	local conn = http:newConnection({ url = "https://..." })  -- or a URL string; . works too
//	conn:setRequestHeaders({ ["Content-Type"] = "application/json" })
//	conn:setBasicAuth(user, password)
//	local ok, body = conn:get()              -- no callback: the body is returned
//	local ok = conn:post(data, function(chunk) ... return true end)
//	conn:getHTTPStatusCode(), conn:getResponseHeaders(), conn:getResponseBody()
//	local code, message = conn:getLastError() -- nil when the last request worked
//
// A request returns true when a response came (whatever its status) and
// false otherwise, with getLastError telling why in curl's codes.

// The codes of getLastError, as curl numbers them.
const (
	errUnsupported = 1  // not http or https
	errOther       = 2  // any other failure
	errURL         = 3  // a malformed URL or request
	errDisabled    = 4  // simplehttp is disabled by the options
	errResolve     = 6  // the host name did not resolve
	errConnect     = 7  // no connection, or a non-public address refused
	errAborted     = 23 // the callback returned false
	errTimeout     = 28 // the request ran out of time
	errTLS         = 35 // the TLS handshake failed
	errRecv        = 56 // reading the response failed
	errTooLarge    = 63 // the response body is larger than the cap
)

// bodyChunk is how much of a response body a callback gets at a time.
const bodyChunk = 32 << 10

// managedHeaders are request headers a script cannot set: the client
// sets them. They are ignored, as scripts written for other clients set
// Content-Length themselves.
var managedHeaders = []string{"Content-Length", "Host", "Connection", "Transfer-Encoding", "Trigger-Origin"}

// httpClient returns the client of simplehttp. It keeps no idle
// connection, so it holds nothing to release.
func httpClient(o HTTPOptions) *http.Client {
	if o.Transport != nil {
		return &http.Client{
			Transport:     o.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	dialer := &net.Dialer{KeepAlive: -1}
	if o.DenyPrivateNetworks {
		dialer.Control = netguard.Control
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    10 * time.Second,
			DisableKeepAlives:      true,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// conn is the Value of a connection's userdata.
type conn struct {
	url        string
	header     http.Header
	user, pass string
	basic      bool
	timeout    time.Duration // 0: the options' timeout

	status     int
	respHeader http.Header
	body       lua.LValue // nil when a callback took the body
	errCode    int
	errMsg     string
}

func (s *compatLayer) httpMethods() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"newConnection": func(L *lua.LState) int {
			base := s.helperBase(L, "simplehttp")
			c := &conn{header: http.Header{}}
			switch p := argAt(L, base).(type) {
			case lua.LString:
				c.url = string(p)
			case *lua.LTable:
				if u, ok := p.RawGetString("url").(lua.LString); ok {
					c.url = string(u)
				}
				if h, ok := p.RawGetString("headers").(*lua.LTable); ok {
					s.setHeaders(L, c, h, base)
				}
			case *lua.LNilType:
			default:
				L.ArgError(base, "want a URL or a table with url")
			}
			ud := L.NewUserData()
			ud.Value = c
			ud.Metatable = s.connMT
			L.Push(ud)
			return 1
		},
	}
}

// conn returns the connection the method was called on.
func connOf(L *lua.LState) *conn {
	ud, ok := L.Get(1).(*lua.LUserData)
	if ok {
		if c, ok := ud.Value.(*conn); ok {
			return c
		}
	}
	L.ArgError(1, "not a connection (call it as connection:method(...))")
	return nil
}

func (s *compatLayer) setHeaders(L *lua.LState, c *conn, h *lua.LTable, arg int) {
	s.vm.lazy.settleIn(L, h)
	for k, v := h.Next(lua.LNil); k != lua.LNil; k, v = h.Next(k) {
		name, ok := k.(lua.LString)
		if !ok || !netguard.ValidHeaderName(string(name)) {
			L.ArgError(arg, "header name "+k.String()+" is not a valid HTTP header name")
		}
		if !lua.LVCanConvToString(v) {
			L.ArgError(arg, "header "+string(name)+" has a "+v.Type().String()+" value, want a string")
		}
		value := lua.LVAsString(v)
		if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			L.ArgError(arg, "header "+string(name)+" has a control character in its value")
		}
		canon := http.CanonicalHeaderKey(string(name))
		if slices.Contains(managedHeaders, canon) {
			continue
		}
		c.header.Set(canon, value)
	}
}

func connMethods(s *compatLayer) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"get":    func(L *lua.LState) int { return s.httpDo(L, http.MethodGet, false) },
		"delete": func(L *lua.LState) int { return s.httpDo(L, http.MethodDelete, false) },
		"head":   func(L *lua.LState) int { return s.httpDo(L, http.MethodHead, false) },
		"post":   func(L *lua.LState) int { return s.httpDo(L, http.MethodPost, true) },
		"put":    func(L *lua.LState) int { return s.httpDo(L, http.MethodPut, true) },
		"patch":  func(L *lua.LState) int { return s.httpDo(L, http.MethodPatch, true) },
		"setURL": func(L *lua.LState) int {
			connOf(L).url = L.CheckString(2)
			return 0
		},
		"getURL": func(L *lua.LState) int {
			L.Push(lua.LString(connOf(L).url))
			return 1
		},
		"setBasicAuth": func(L *lua.LState) int {
			c := connOf(L)
			c.user, c.pass, c.basic = L.CheckString(2), L.OptString(3, ""), true
			return 0
		},
		"setRequestHeaders": func(L *lua.LState) int {
			s.setHeaders(L, connOf(L), L.CheckTable(2), 2)
			return 0
		},
		"clearRequestHeaders": func(L *lua.LState) int {
			connOf(L).header = http.Header{}
			return 0
		},
		"setTimeout": func(L *lua.LState) int {
			c := connOf(L)
			ms := float64(L.CheckNumber(2))
			if !(ms > 0) || ms > float64(math.MaxInt64/time.Millisecond) {
				L.ArgError(2, "the timeout must be a positive number of milliseconds")
			}
			c.timeout = time.Duration(ms * float64(time.Millisecond))
			return 0
		},
		"getHTTPStatusCode": func(L *lua.LState) int {
			L.Push(lua.LNumber(connOf(L).status))
			return 1
		},
		"getResponseHeaders": func(L *lua.LState) int {
			c := connOf(L)
			t := L.CreateTable(0, len(c.respHeader))
			for name, values := range c.respHeader {
				t.RawSetString(name, lua.LString(strings.Join(values, ", ")))
			}
			L.Push(t)
			return 1
		},
		"getResponseBody": func(L *lua.LState) int {
			c := connOf(L)
			if c.body == nil {
				L.Push(lua.LNil)
			} else {
				L.Push(c.body)
			}
			return 1
		},
		"getLastError": func(L *lua.LState) int {
			c := connOf(L)
			if c.errCode == 0 {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LNumber(c.errCode))
			L.Push(lua.LString(c.errMsg))
			return 2
		},
		"disconnect": func(L *lua.LState) int {
			connOf(L)
			return 0
		},
	}
}

// httpFail records a failed request and pushes false.
func httpFail(L *lua.LState, c *conn, code int, msg string) int {
	c.errCode, c.errMsg = code, msg
	L.Push(lua.LFalse)
	return 1
}

// httpDo makes a request: connection:get([callback]) or
// connection:post(data [, callback]).
func (s *compatLayer) httpDo(L *lua.LState, method string, withBody bool) int {
	c := connOf(L)
	arg := 2
	var body io.Reader
	contentType := ""
	if withBody {
		switch v := L.Get(2).(type) {
		case lua.LString, lua.LNumber:
			body = strings.NewReader(lua.LVAsString(v))
			contentType = "application/x-www-form-urlencoded"
		case *lua.LTable:
			data, err := s.encode(v)
			if err != nil {
				L.ArgError(2, err.Error())
			}
			body = bytes.NewReader(data)
			contentType = "application/json"
		case *lua.LNilType:
		default:
			L.ArgError(2, "want the body as a string or a table, got a "+v.Type().String())
		}
		arg = 3
	}
	var callback *lua.LFunction
	switch v := L.Get(arg).(type) {
	case *lua.LFunction:
		callback = v
	case *lua.LNilType:
	default:
		L.ArgError(arg, "want a callback function, got a "+v.Type().String())
	}
	c.status, c.respHeader, c.body, c.errCode, c.errMsg = 0, nil, nil, 0, ""

	if s.sh.http.Disabled {
		return httpFail(L, c, errDisabled, "simplehttp is disabled on this worker")
	}
	u, err := url.Parse(c.url)
	switch {
	case err != nil || c.url == "":
		return httpFail(L, c, errURL, "malformed URL "+netguard.RedactURL(c.url))
	case u.Scheme != "http" && u.Scheme != "https":
		return httpFail(L, c, errUnsupported, "unsupported protocol "+u.Scheme+" (want http or https)")
	case u.Hostname() == "":
		return httpFail(L, c, errURL, "URL "+netguard.RedactURL(c.url)+" has no host")
	}
	timeout := s.sh.http.Timeout
	if c.timeout > 0 && c.timeout < timeout {
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(s.vm.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.url, body)
	if err != nil {
		return httpFail(L, c, errURL, "bad request: "+err.Error())
	}
	req.Header = c.header.Clone()
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "triggerbus")
	}
	if contentType != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	if origin := originOf(s.vm.ctx); origin != "" {
		req.Header.Set("Trigger-Origin", origin)
	}
	if c.basic {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := s.sh.client.Do(req)
	if err != nil {
		code, msg := httpFailure(ctx, err)
		return httpFail(L, c, code, msg)
	}
	defer resp.Body.Close()
	c.status, c.respHeader = resp.StatusCode, resp.Header

	limit := s.sh.http.MaxBodyBytes
	if callback == nil {
		// The body becomes one Lua string.
		limit = min(limit, int64(s.sh.maxBytes))
	}
	var all []byte
	buf := make([]byte, bodyChunk)
	var total int64
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			total += int64(n)
			if total > limit {
				return httpFail(L, c, errTooLarge, "the response body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes")
			}
			if callback != nil {
				L.Push(callback)
				L.Push(lua.LString(buf[:n]))
				L.Call(1, 1)
				ret := L.Get(-1)
				L.Pop(1)
				if ret == lua.LFalse {
					return httpFail(L, c, errAborted, "the callback returned false")
				}
			} else {
				all = append(all, buf[:n]...)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return httpFail(L, c, errTimeout, "timed out reading the response")
			}
			return httpFail(L, c, errRecv, "reading the response: "+err.Error())
		}
	}
	L.Push(lua.LTrue)
	if callback != nil {
		return 1
	}
	c.body = lua.LString(all)
	L.Push(c.body)
	return 2
}

// originOf returns the Trigger-Origin of the call of ctx, "" outside one.
func originOf(ctx context.Context) string {
	if origin, ok := event.OriginFrom(ctx); ok {
		return origin
	}
	c, _ := handlers.CallFrom(ctx)
	return c.Origin
}

// httpFailure returns the code and message of a request that got no
// response.
func httpFailure(ctx context.Context, err error) (int, string) {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = netguard.RedactURL(ue.URL)
	}
	var op *net.OpError
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	switch {
	case errors.Is(err, netguard.ErrNonPublic):
		addr := "the address"
		if errors.As(err, &op) && op.Addr != nil {
			addr = op.Addr.String()
		}
		return errConnect, "refused to connect to " + addr + ": not a public address, and private networks are denied"
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return errTimeout, "timed out: " + err.Error()
	case errors.As(err, &dns):
		return errResolve, "could not resolve host " + dns.Name
	case errors.As(err, &cert):
		return errTLS, err.Error()
	case errors.As(err, &op) && op.Op == "dial":
		return errConnect, err.Error()
	}
	return errOther, err.Error()
}
