package functest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// harness is everything a function under test reaches outside itself: the
// bus (publishes, API calls, trigger.request), simplehttp's transport, the
// mail relay and the data store. It answers from the case that runs and
// records what the function sends. Cases run one at a time.
type harness struct {
	apiPrefix string

	mu        sync.Mutex
	requests  []cannedRequest
	answers   []cannedHTTP
	publishes []sent
	mails     []mailer.Message
	problems  []string
	store     map[string][]byte
}

var (
	_ handlers.Bus      = (*harness)(nil)
	_ http.RoundTripper = (*harness)(nil)
	_ lua.Mailer        = (*harness)(nil)
	_ lua.DataStore     = (*harness)(nil)
)

type cannedRequest struct {
	Request
	subject string
	args    json.RawMessage // nil: any
	reply   []byte
	used    bool
}

type cannedHTTP struct {
	HTTPAnswer
	body []byte
	used bool
}

type sent struct {
	subject string
	data    []byte
}

// begin readies the harness for c: its canned answers, nothing sent, an
// empty data store.
func (h *harness) begin(c *Case) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests, h.answers, h.publishes, h.mails, h.problems = nil, nil, nil, nil, nil
	h.store = map[string][]byte{}
	for _, r := range c.Requests {
		cr := cannedRequest{Request: r, subject: r.Subject}
		if cr.subject == "" {
			cr.subject = h.apiPrefix + "." + r.API + "." + r.Method
		}
		var err error
		if cr.args, err = nodeJSON(r.Args); err != nil {
			return fmt.Errorf("line %d: args: %w", r.Line, err)
		}
		switch {
		case r.Result.Kind != 0:
			res, err := nodeJSON(r.Result)
			if err != nil {
				return fmt.Errorf("line %d: result: %w", r.Line, err)
			}
			cr.reply, _ = json.Marshal(map[string]json.RawMessage{"result": res})
		case r.Error.Kind != 0:
			e, err := nodeJSON(r.Error)
			if err != nil {
				return fmt.Errorf("line %d: error: %w", r.Line, err)
			}
			cr.reply, _ = json.Marshal(map[string]json.RawMessage{"error": e})
		default:
			if cr.reply, err = nodeJSON(r.Reply); err != nil {
				return fmt.Errorf("line %d: reply: %w", r.Line, err)
			}
		}
		h.requests = append(h.requests, cr)
	}
	for _, a := range c.HTTP {
		ca := cannedHTTP{HTTPAnswer: a}
		if a.Method == "" {
			ca.Method = http.MethodGet
		}
		switch {
		case a.Response.Kind == 0: // no body
		case a.Response.Kind == yaml.ScalarNode && a.Response.Tag == "!!str":
			ca.body = []byte(a.Response.Value)
		default:
			b, err := nodeJSON(a.Response)
			if err != nil {
				return fmt.Errorf("line %d: response: %w", a.Line, err)
			}
			ca.body = b
		}
		h.answers = append(h.answers, ca)
	}
	return nil
}

// end returns what the function sent, and the problems: calls no canned
// answer took, and canned answers no call took.
func (h *harness) end() (publishes []sent, mails []mailer.Message, problems []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	problems = h.problems
	for _, r := range h.requests {
		if !r.used {
			problems = append(problems, fmt.Sprintf("line %d: the canned reply of the request on %s was not used: the function made no such request", r.Line, r.subject))
		}
	}
	for _, a := range h.answers {
		if !a.used {
			problems = append(problems, fmt.Sprintf("line %d: the canned response of %s %s was not used: the function made no such request", a.Line, a.Method, a.URL))
		}
	}
	return h.publishes, h.mails, problems
}

func (h *harness) problem(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	h.problems = append(h.problems, msg)
	return fmt.Errorf("trigger-worker test: %s", msg)
}

// Publish records the message.
func (h *harness) Publish(_ context.Context, subject string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishes = append(h.publishes, sent{subject, bytes.Clone(data)})
	return nil
}

// Request answers from the first unused canned reply of subject whose args
// match.
func (h *harness) Request(_ context.Context, subject string, data []byte, _ time.Duration) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var args json.RawMessage
	var body struct {
		Args json.RawMessage `json:"args"`
	}
	if json.Unmarshal(data, &body) == nil {
		args = body.Args
	}
	for i := range h.requests {
		r := &h.requests[i]
		if r.used || r.subject != subject {
			continue
		}
		if r.args != nil && !sameJSON(r.args, args) {
			continue
		}
		r.used = true
		return r.reply, nil
	}
	return nil, h.problem("unexpected request on %s with %s: no canned reply in the case's requests matches it", subject, cut(data))
}

// RoundTrip answers a simplehttp request from the first unused canned
// response of its method and URL.
func (h *harness) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	url := req.URL.String()
	for i := range h.answers {
		a := &h.answers[i]
		if a.used || a.Method != req.Method || a.URL != url {
			continue
		}
		if a.Body != nil && *a.Body != string(body) {
			continue
		}
		a.used = true
		status := a.Status
		if status == 0 {
			status = http.StatusOK
		}
		hdr := http.Header{}
		for k, v := range a.Headers {
			hdr.Set(k, v)
		}
		return &http.Response{
			Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: hdr, Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)),
			Request: req,
		}, nil
	}
	return nil, h.problem("unexpected HTTP request %s %s with body %s: no canned response in the case's http matches it", req.Method, url, cut(body))
}

// Send records the mail.
func (h *harness) Send(_ context.Context, m mailer.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mails = append(h.mails, m)
	return nil
}

// Get, Put and Delete keep the dataStore maps of the case in memory.
func (h *harness) Get(_ context.Context, function string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.store[function], nil
}

func (h *harness) Put(_ context.Context, function string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.store[function] = bytes.Clone(data)
	return nil
}

func (h *harness) Delete(_ context.Context, function string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.store, function)
	return nil
}

// sameJSON reports whether a and b are the same JSON value, whatever the
// order of keys and the spacing.
func sameJSON(a, b json.RawMessage) bool {
	return canonical(a) == canonical(b)
}

// canonical returns the JSON of data with sorted keys and no spacing; data
// itself when it is not JSON.
func canonical(data []byte) string {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return string(data)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// cut shortens a body for a message.
func cut(data []byte) string {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "(empty)"
	}
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
