package functest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Suffix ends the name of every test file: quota_test.yaml tests quota.lua.
const Suffix = "_test.yaml"

// ErrBadFile is wrapped by the errors of a test file that cannot be read:
// bad YAML, an unknown key, a value of the wrong type or a missing one.
var ErrBadFile = errors.New("bad test file")

// File is one test file: the cases of the functions of one script.
type File struct {
	// Path is the file's path.
	Path string `yaml:"-"`
	// Script is the script under test, relative to the file; "" means the
	// file's name without _test.yaml, with .lua.
	Script string `yaml:"script"`
	// Function is the function the cases call unless they name one, by
	// its ref or the name of its entry point; "" means the script's only
	// function.
	Function string `yaml:"function"`
	// Cases are the file's cases, run in order.
	Cases []Case `yaml:"cases"`
}

// Case is one call of one function and what it must do.
type Case struct {
	// Name names the case in the output; unique in its file.
	Name string `yaml:"name"`
	// Line is where the case starts in its file.
	Line int `yaml:"-"`
	// Function is the function under test, by its ref or the name of its
	// entry point; "" means the file's.
	Function string `yaml:"function"`
	// Type and Option are the event's trigger type and option; "" means
	// the function's trigger type and its first option.
	Type   string `yaml:"type"`
	Option string `yaml:"option"`
	// Event is the event, FDL's p: id, timeStamp, input, user, customer...
	// As YAML; it is sent as its JSON.
	Event yaml.Node `yaml:"event"`
	// Requests are the canned replies of the requests the function makes:
	// adminAPI/userAPI calls and trigger.request.
	Requests []Request `yaml:"requests"`
	// HTTP are the canned responses of the function's simplehttp requests.
	HTTP []HTTPAnswer `yaml:"http"`
	// Expect is what the function must do.
	Expect Expect `yaml:"expect"`
}

// Request is the canned reply of one request. A request takes the first
// unused Request of its subject whose args match; a request none answers
// fails the case, and so does a Request no request took.
type Request struct {
	Line int `yaml:"-"`
	// Subject is the request's subject. For the API bridge, API and Method
	// may name it instead: <api_prefix>.<API>.<Method>.
	Subject string `yaml:"subject"`
	API     string `yaml:"api"`
	Method  string `yaml:"method"`
	// Args, when given, are the API call's arguments the request must carry
	// (its "args"), compared as JSON.
	Args yaml.Node `yaml:"args"`
	// Result is the API's result: the reply {"result": Result}.
	Result yaml.Node `yaml:"result"`
	// Error is the API's error: the reply {"error": Error}, e.g.
	// {code: 404, message: not found}.
	Error yaml.Node `yaml:"error"`
	// Reply is the whole reply, as JSON, for trigger.request.
	Reply yaml.Node `yaml:"reply"`
}

// HTTPAnswer is the canned response of one simplehttp request, taken by
// the first request of its method and URL, as Requests are.
type HTTPAnswer struct {
	Line int `yaml:"-"`
	// Method is the request's method; "" means GET.
	Method string `yaml:"method"`
	// URL is the request's URL, exactly.
	URL string `yaml:"url"`
	// Body, when given, is the request body it must carry.
	Body *string `yaml:"body"`
	// Status is the response's status; 0 means 200.
	Status int `yaml:"status"`
	// Headers are the response's headers.
	Headers map[string]string `yaml:"headers"`
	// Response is the response body: a string as it is, anything else as
	// its JSON.
	Response yaml.Node `yaml:"response"`
}

// Expect is what a case checks. Only the keys given are compared, except
// publishes and mails: what the function sends is always compared, and
// none given means it must send none.
type Expect struct {
	// Allowed, Code, Message, Modified and Input are the PRE decision's.
	Allowed  *bool     `yaml:"allowed"`
	Code     *string   `yaml:"code"`
	Message  *string   `yaml:"message"`
	Modified *bool     `yaml:"modified"`
	Input    yaml.Node `yaml:"input"`
	// Outcome is the function's outcome: SUCCESS, CONTINUE, FAILED,
	// ERROR or TIMEOUT.
	Outcome *string `yaml:"outcome"`
	// Error is text the function's error must contain.
	Error *string `yaml:"error"`
	// Publishes are the messages the function publishes, in order.
	Publishes []Publish `yaml:"publishes"`
	// Mails are the mail it sends with FDLEmailHelper, in order.
	Mails []Mail `yaml:"mails"`
}

// Publish is one message a function publishes.
type Publish struct {
	Subject string    `yaml:"subject" json:"subject"`
	Data    yaml.Node `yaml:"data" json:"-"`
}

// Mail is one message a function sends with FDLEmailHelper.
type Mail struct {
	To      []string `yaml:"to" json:"to,omitempty"`
	Cc      []string `yaml:"cc" json:"cc,omitempty"`
	Bcc     []string `yaml:"bcc" json:"bcc,omitempty"`
	ReplyTo string   `yaml:"replyTo" json:"replyTo,omitempty"`
	Subject string   `yaml:"subject" json:"subject"`
	Body    string   `yaml:"body" json:"body"`
}

// ParseFile reads a test file. Any problem is an error wrapping
// [ErrBadFile] that starts with file:line.
func ParseFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	return Parse(path, data)
}

// yamlLine matches the "line N: " of go-yaml's errors.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// unknownField matches go-yaml's message about an unknown key.
var unknownField = regexp.MustCompile(`^field (\S+) not found in type functest\.(\w+)$`)

// Parse reads the test file data found at path; see [ParseFile].
func Parse(path string, data []byte) (*File, error) {
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrBadFile, path, line, fmt.Sprintf(format, args...))
	}
	f := &File{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad(1, "the file is empty: want a mapping with cases")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs []error
			for _, e := range te.Errors {
				errs = append(errs, yamlError(path, e))
			}
			return nil, errors.Join(errs...)
		}
		return nil, yamlError(path, err.Error())
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(path, err.Error())
	}
	casesNode := mapValue(docRoot(&root), "cases")
	if casesNode == nil || len(f.Cases) == 0 {
		return nil, bad(1, "no cases: want a list under the key cases")
	}
	seen := map[string]int{}
	for i := range f.Cases {
		c := &f.Cases[i]
		n := casesNode.Content[i]
		c.Line = n.Line
		for j, r := range seqOf(mapValue(n, "requests")) {
			c.Requests[j].Line = r.Line
		}
		for j, h := range seqOf(mapValue(n, "http")) {
			c.HTTP[j].Line = h.Line
		}
		if c.Name == "" {
			return nil, bad(c.Line, "case %d has no name", i+1)
		}
		if prev, ok := seen[c.Name]; ok {
			return nil, bad(c.Line, "case %q is also at line %d: names must be unique", c.Name, prev)
		}
		seen[c.Name] = c.Line
		if err := checkCase(c); err != nil {
			return nil, bad(err.line, "case %q: %s", c.Name, err.msg)
		}
	}
	return f, nil
}

type lineError struct {
	line int
	msg  string
}

// checkCase checks what the types cannot.
func checkCase(c *Case) *lineError {
	if c.Event.Kind != 0 && c.Event.Kind != yaml.MappingNode {
		return &lineError{c.Event.Line, "event must be a mapping (FDL's p: input, user, customer...)"}
	}
	for _, r := range c.Requests {
		switch {
		case r.Subject == "" && (r.API == "" || r.Method == ""):
			return &lineError{r.Line, "a request needs subject, or api and method"}
		case r.Subject != "" && (r.API != "" || r.Method != ""):
			return &lineError{r.Line, "a request takes subject or api and method, not both"}
		case r.API != "" && r.API != "admin" && r.API != "user":
			return &lineError{r.Line, fmt.Sprintf("api is %q, want admin or user", r.API)}
		}
		replies := 0
		for _, n := range []yaml.Node{r.Result, r.Error, r.Reply} {
			if n.Kind != 0 {
				replies++
			}
		}
		if replies != 1 {
			return &lineError{r.Line, "a request needs exactly one of result, error and reply"}
		}
	}
	for _, h := range c.HTTP {
		if h.URL == "" {
			return &lineError{h.Line, "an http answer needs url"}
		}
		if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
			return &lineError{h.Line, fmt.Sprintf("status %d is not an HTTP status", h.Status)}
		}
	}
	if o := c.Expect.Outcome; o != nil {
		switch *o {
		case "SUCCESS", "CONTINUE", "FAILED", "ERROR", "TIMEOUT":
		default:
			return &lineError{c.Line, fmt.Sprintf("expect.outcome is %q, want SUCCESS, CONTINUE, FAILED, ERROR or TIMEOUT", *o)}
		}
	}
	return nil
}

// yamlError turns one of go-yaml's messages into file:line: message.
func yamlError(path, msg string) error {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%w: %s: %s", ErrBadFile, path, strings.TrimPrefix(msg, "yaml: "))
	}
	text := m[2]
	if u := unknownField.FindStringSubmatch(text); u != nil {
		text = fmt.Sprintf("unknown key %q in %s", u[1], strings.ToLower(u[2]))
	}
	return fmt.Errorf("%w: %s:%s: %s", ErrBadFile, path, m[1], text)
}

func docRoot(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0]
	}
	return n
}

// mapValue returns the value of key in the mapping n, nil when none.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func seqOf(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// nodeJSON returns the JSON of a YAML value; nil for an absent one.
func nodeJSON(n yaml.Node) (json.RawMessage, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return json.Marshal(v)
}

// jsonable turns what go-yaml decodes into values encoding/json takes.
func jsonable(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string: JSON keys are strings", k)
			}
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[ks] = j
		}
		return m, nil
	case []any:
		for i, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	}
	return v, nil
}

// Find returns the test files of paths: a file is itself, a directory
// its *_test.yaml files (not those of its subdirectories), in name order.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*"+Suffix))
		if err != nil {
			return nil, err
		}
		out = append(out, matches...)
	}
	return out, nil
}

// ScriptPath returns the path of the script f tests.
func (f *File) ScriptPath() string {
	dir := filepath.Dir(f.Path)
	if f.Script != "" {
		if filepath.IsAbs(f.Script) {
			return f.Script
		}
		return filepath.Join(dir, f.Script)
	}
	return filepath.Join(dir, strings.TrimSuffix(filepath.Base(f.Path), Suffix)+".lua")
}
