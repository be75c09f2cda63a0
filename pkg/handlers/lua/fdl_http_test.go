package lua_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// fdlHTTPServer is a loopback server for simplehttp: /echo answers 201
// with what it got, /redirect redirects, /big sends 100 KiB, /slow waits
// until the client gives up.
type fdlHTTPServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func fdlNewHTTPServer(t *testing.T) *fdlHTTPServer {
	s := &fdlHTTPServer{}
	done := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(body))
		s.mu.Unlock()
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Reply", "yes")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, r.Method+" "+string(body))
		case "/redirect":
			http.Redirect(w, r, "/echo", http.StatusFound)
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-done:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(done) })
	return s
}

func (s *fdlHTTPServer) requests() ([]*http.Request, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...), append([]string(nil), s.body...)
}

func TestFDLSimpleHTTP(t *testing.T) {
	srv := fdlNewHTTPServer(t)
	h := luaFunc(t, `
  local base = p.input.url
  local conn = simplehttp.newConnection({ url = base .. "/echo?token=x" })
  conn:setRequestHeaders({ ["X-Custom"] = "1", ["Content-Length"] = "999", ["Trigger-Origin"] = "forged" })
  conn:setBasicAuth("user", "secret")
  local ok, body = conn:post("a=1")
  assert(ok == true and body == "POST a=1", body)
  assert(conn:getHTTPStatusCode() == 201 and conn:getResponseBody() == body)
  local headers = conn:getResponseHeaders()
  assert(headers["X-Reply"] == "yes" and headers["X-Multi"] == "a, b")
  assert(conn:getLastError() == nil)

  conn:clearRequestHeaders()
  local chunks = {}
  assert(conn:put({ name = "web-1", status = new("ServerStatus", "RUNNING") }, function(c)
    chunks[#chunks + 1] = c
    return true
  end) == true)
  assert(table.concat(chunks) == 'PUT {"name":"web-1","status":"RUNNING"}' or table.concat(chunks) == 'PUT {"status":"RUNNING","name":"web-1"}', table.concat(chunks))
  assert(conn:getResponseBody() == nil, "a callback took the body")

  local conn2 = simplehttp:newConnection(base .. "/redirect")
  ok = conn2:get()
  assert(ok and conn2:getHTTPStatusCode() == 302, "redirects are not followed")
  conn2:setURL(base .. "/big")
  local n = 0
  assert(conn2:get(function(c) n = n + 1 return true end) and n >= 2, "the body comes in chunks")
  assert(conn2:get(function() return false end) == false)
  local code, msg = conn2:getLastError()
  assert(code == 23 and msg:find("callback"), msg)
  conn2:disconnect()
  return { exitState = "SUCCESS" }`)
	res, err := luaCallWithin(t, luaCtx(t, nil, nil), h,
		luaEvent(`{"url":"`+srv.URL+`"}`))
	if err != nil || res.ExitState != handlers.Success {
		t.Fatalf("Handle() = %+v, %v", res, err)
	}
	reqs, bodies := srv.requests()
	if len(reqs) != 5 {
		t.Fatalf("the server got %d requests, want 5", len(reqs))
	}
	r := reqs[0]
	user, pass, _ := r.BasicAuth()
	if r.Method != http.MethodPost || r.URL.RawQuery != "token=x" || bodies[0] != "a=1" ||
		r.Header.Get("Trigger-Origin") != "test/01JDQ7Z6W3S6K4V0Q5H3YB3M8C" || r.Header.Get("X-Custom") != "1" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ContentLength != 3 ||
		user != "user" || pass != "secret" || r.Header.Get("User-Agent") != "triggerbus" {
		t.Errorf("request 1 = %s %s %q, headers %v", r.Method, r.URL, bodies[0], r.Header)
	}
	r = reqs[1]
	var doc map[string]string
	if err := json.Unmarshal([]byte(bodies[1]), &doc); err != nil || doc["status"] != "RUNNING" ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Custom") != "" ||
		r.Header.Get("Trigger-Origin") != "test/01JDQ7Z6W3S6K4V0Q5H3YB3M8C" {
		t.Errorf("request 2 = %s %q, headers %v", r.Method, bodies[1], r.Header)
	}
}

func TestFDLSimpleHTTPFailures(t *testing.T) {
	srv := fdlNewHTTPServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		opts     lua.Options
		url      string
		wantCode int
		wantMsg  string
	}{
		{"body too large", lua.Options{HTTP: lua.HTTPOptions{MaxBodyBytes: 1000}}, srv.URL + "/big", 63, "larger than the limit of 1000 bytes"},
		{"timeout", lua.Options{HTTP: lua.HTTPOptions{Timeout: 100 * time.Millisecond}}, srv.URL + "/slow", 28, "timed out"},
		{"private network", lua.Options{HTTP: lua.HTTPOptions{DenyPrivateNetworks: true}}, srv.URL + "/echo", 7, "not a public address"},
		{"disabled", lua.Options{HTTP: lua.HTTPOptions{Disabled: true}}, srv.URL + "/echo", 4, "disabled"},
		{"scheme", lua.Options{}, "file:///etc/passwd", 1, "unsupported protocol file"},
		{"malformed", lua.Options{}, "http://[::1", 3, "malformed URL"},
		{"no host", lua.Options{}, "http:///x", 3, "has no host"},
		{"refused", lua.Options{}, closed, 7, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, `
  local conn = new("simplehttp"):newConnection(p.input.url)
  local ok = conn:get()
  local code, message = conn:getLastError()
  assert(ok == false and conn:getHTTPStatusCode() == 0 or code == 63)
  return { exitState = "SUCCESS", errorCode = code, errorMessage = message }`, tt.opts)
			in, _ := json.Marshal(map[string]string{"url": tt.url})
			res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(string(in)))
			if err != nil || res.ErrorCode != strconv.Itoa(tt.wantCode) || !strings.Contains(res.ErrorMessage, tt.wantMsg) {
				t.Errorf("getLastError() = %s %q, %v; want %d and %q", res.ErrorCode, res.ErrorMessage, err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
