package lua_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/internal/mailer/mailertest"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// docBlock is a fenced code block of docs/fdl.md.
type docBlock struct {
	line int    // of the opening fence
	lang string // lua, json, ...
	code string
	mode string            // of a lua block: fragment, script, request or refused
	args map[string]string // of a lua block: input=NAME
}

// docBlocks reads the fenced code blocks of a Markdown file. A fence may be
// indented (inside a list item); its indentation is removed from the
// block's lines.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []docBlock
	var cur *docBlock
	indent := ""
	var lines []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if lang, ok := strings.CutPrefix(trimmed, "```"); ok {
				cur = &docBlock{line: n, lang: lang}
				indent = line[:len(line)-len(trimmed)]
				lines = nil
			}
			continue
		}
		if trimmed == "```" {
			cur.code = strings.Join(lines, "\n") + "\n"
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		lines = append(lines, strings.TrimPrefix(line, indent))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block not closed", path, cur.line)
	}
	return blocks
}

// docMarker reads the `-- doc: MODE [key=value ...]` first line of a Lua
// block.
func docMarker(b *docBlock) error {
	first, _, _ := strings.Cut(b.code, "\n")
	rest, ok := strings.CutPrefix(first, "-- doc:")
	if !ok {
		return errors.New("a Lua example starts with `-- doc: fragment`, `script`, `request` or `refused`")
	}
	fields := strings.Fields(rest)
	b.mode, b.args = "fragment", map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			b.args[k] = v
			continue
		}
		b.mode = f
	}
	switch b.mode {
	case "fragment", "script", "request", "refused":
		return nil
	}
	return fmt.Errorf("unknown mode %q", b.mode)
}

// docInputs are the inputs a fragment may name with input=NAME.
var docInputs = map[string]string{
	"job": `{"resourceUUID":"j-1","jobType":"CREATE_SERVER","status":"SUCCESSFUL","itemType":"SERVER","itemUUID":"s-1",` +
		`"customerUUID":"c-1"}`,
	"metadata": `[{"resourceUUID":"s-1","customerUUID":"c-1","resourceName":"web-1"},` +
		`"<CONFIG><meta><server><system><hostname>web</hostname></system></server></meta></CONFIG>"]`,
}

// docScript makes a fragment the body of an entry point. Its one line of
// head keeps the fragment's lines one after the fence, as in the document.
func docScript(code string) string {
	return "function register() return {\"doc_example\"} end function doc_example(p) " +
		"if p == nil then return {ref = \"doc_example\", triggerType = \"POST_CREATE\", triggerOptions = {\"SERVER\"}} end\n" +
		code + "end\n"
}

// docLines rewrites the positions file:N in msg as the lines of the
// document they stand for: the block's lines start at line first of the
// script.
func docLines(msg, file, doc string, fence, first int) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, file+":")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		msg = msg[i+len(file)+1:]
		j := 0
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(msg[:j])
		if err != nil {
			b.WriteString(file + ":")
			continue
		}
		fmt.Fprintf(&b, "%s:%d", doc, fence+n-first+1)
		msg = msg[j:]
	}
}

// TestFDLDocExamples runs every code example of docs/fdl.md: Lua blocks on
// the real Lua kind (with an API responder on an embedded NATS server, a
// data store on its JetStream, a loopback SMTP relay and a message
// catalogue), JSON blocks checked to be JSON, and the request example
// compared with what the Lua example before it sends.
func TestFDLDocExamples(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "fdl.md")
	blocks := docBlocks(t, path)

	var request, result, apiError string
	for _, b := range blocks {
		if b.lang != "json" {
			if b.lang != "lua" {
				t.Errorf("%s:%d: a %q example, which no test runs: tag it lua or json", path, b.line, b.lang)
			}
			continue
		}
		if !json.Valid([]byte(b.code)) {
			t.Errorf("%s:%d: JSON example is not JSON:\n%s", path, b.line, b.code)
		}
		switch {
		case strings.Contains(b.code, `"args"`):
			request = b.code
		case strings.Contains(b.code, `"result"`):
			result = b.code
		case strings.Contains(b.code, `"error"`):
			apiError = b.code
		}
	}
	if request == "" || result == "" || apiError == "" {
		t.Fatalf("%s: want the request, result and error JSON examples of the API bridge", path)
	}

	api, bus := fdlStartAPI(t, "fco.api.>", func(subject string, req fdlRequest) any {
		switch subject {
		case "fco.api.admin.listResources":
			return result
		case "fco.api.admin.getResource":
			return apiError
		}
		return `{"result":null}`
	})
	store, _ := fidelityStore(t, 0)
	relay := mailertest.Run(t)
	m, err := mailer.New(mailer.Config{Host: relay.Host, Port: relay.Port, CA: relay.CA, From: "triggers@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	opts := lua.Options{
		DataStore: store,
		Mail:      m,
		Messages:  map[string]string{"job.done": "Job {0} is done"},
		HTTP:      lua.HTTPOptions{Disabled: true},
	}

	ran := 0
	for _, b := range blocks {
		if b.lang != "lua" {
			continue
		}
		if err := docMarker(&b); err != nil {
			t.Errorf("%s:%d: %v", path, b.line, err)
			continue
		}
		t.Run(fmt.Sprintf("line %d %s", b.line, b.mode), func(t *testing.T) {
			src, first := b.code, 1
			if b.mode != "script" {
				src, first = docScript(src), 2
			}
			file := filepath.Join(t.TempDir(), fmt.Sprintf("fdl_md_%d.lua", b.line))
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			fns, err := lua.LoadScript(file, opts)
			luaCloseAll(t, fns)
			if b.mode == "refused" {
				var le *lua.Error
				if !errors.As(err, &le) || !strings.Contains(le.Message, "_ENV is Lua 5.2") {
					t.Fatalf("%s:%d: LoadScript error = %v, want the _ENV refusal", path, b.line, err)
				}
				return
			}
			if err != nil || len(fns) == 0 {
				t.Fatalf("%s:%d: LoadScript = %d functions, %s", path, b.line, len(fns), docLines(fmt.Sprint(err), file, path, b.line, first))
			}
			input := docInputs["job"]
			if name := b.args["input"]; name != "" {
				input = docInputs[name]
			}
			before := len(api.got())
			for _, f := range fns {
				ev := luaEvent(input)
				ev.TriggerType, ev.TriggerOption = f.TriggerType, "SUCCESSFUL"
				res, err := f.Handler.Handle(fdlCallCtx(t, bus, nil), ev)
				if err != nil || (res.ExitState != handlers.Success && res.ExitState != handlers.Continue) {
					t.Fatalf("%s:%d: %s = %+v, %s", path, b.line, f.Ref, res, docLines(fmt.Sprint(err), file, path, b.line, first))
				}
			}
			if b.mode == "request" {
				calls := api.got()[before:]
				if len(calls) == 0 {
					t.Fatalf("%s:%d: the example made no API request", path, b.line)
				}
				fdlSameJSON(t, "the request of the example", calls[0].Body, request)
			}
		})
		ran++
	}
	if ran < 8 {
		t.Errorf("%s: ran %d Lua examples, want every one (at least 8)", path, ran)
	}
	// The email examples and the script sent their messages.
	if n := len(relay.Messages()); n != 3 {
		t.Errorf("the examples sent %d messages, want 3", n)
	}
}
