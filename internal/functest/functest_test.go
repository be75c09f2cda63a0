package functest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// testConfig is the config of the tests: scripts' entry points become
// functions by their descriptions (without schedules: the scripts of these
// tests have none).
func testConfig() Config {
	return Config{Functions: func(sfs []lua.ScriptFunction) ([]worker.Function, error) {
		fns := make([]worker.Function, len(sfs))
		for i, sf := range sfs {
			fns[i] = worker.Function{Ref: sf.Ref, TriggerType: sf.TriggerType, Options: sf.TriggerOptions, Priority: sf.Priority, Source: sf.File, Handler: sf.Handler}
		}
		return fns, nil
	}}
}

func runExample(t *testing.T, edit func(string) string) (*Report, string) {
	t.Helper()
	rep, err := Run(context.Background(), testConfig(), []string{writeExample(t, edit)})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteText(&out, rep); err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

// caseNamed returns the result of the case called name.
func caseNamed(t *testing.T, rep *Report, name string) Result {
	t.Helper()
	for _, r := range rep.Cases {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no case %q", name)
	return Result{}
}

// A wrong expectation fails its case with a diff of the field, and only
// that case.
func TestWrongExpectationShowsDiff(t *testing.T) {
	rep, out := runExample(t, func(s string) string {
		return strings.Replace(s, "code: VIP_QUOTA", "code: VIP_QUOTA_EXCEEDED", 1)
	})
	if rep.Failed != 1 || rep.Passed != 4 {
		t.Fatalf("want 1 failed, 4 passed:\n%s", out)
	}
	r := caseNamed(t, rep, "refuses a VIP server over its quota and tells sales")
	if r.Pass || len(r.Problems) != 0 {
		t.Fatalf("result %+v", r)
	}
	for _, want := range []string{"--- expected\n+++ actual\n", `-  "code": "VIP_QUOTA_EXCEEDED",`, `+  "code": "VIP_QUOTA",`} {
		if !strings.Contains(r.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.Diff)
		}
	}
	if !strings.Contains(out, "FAIL  ") || !strings.Contains(out, "4 passed, 1 failed") {
		t.Errorf("text output:\n%s", out)
	}
}

// What a function sends is always compared: a publish the case does not
// expect, a mail it does not expect and a changed publish are diffs.
func TestSentMessagesAreCompared(t *testing.T) {
	rep, _ := runExample(t, func(s string) string {
		s = strings.Replace(s, "data: {customer: c-2, cpu: 8}", "data: {customer: c-2, cpu: 9}", 1)
		return strings.Replace(s, "          body: Bigco asked for 32 CPUs\n", "          body: Bigco asked for 33 CPUs\n", 1)
	})
	r := caseNamed(t, rep, "audits a VIP server within its quota")
	if r.Pass || !strings.Contains(r.Diff, `-        "cpu": 9,`) || !strings.Contains(r.Diff, `+        "cpu": 8,`) {
		t.Fatalf("publish: %+v", r)
	}
	r = caseNamed(t, rep, "refuses a VIP server over its quota and tells sales")
	if r.Pass || !strings.Contains(r.Diff, `+      "body": "Bigco asked for 32 CPUs"`) {
		t.Fatalf("mail: %+v", r)
	}
}

// A request without a canned reply fails the case, naming it; a canned
// reply no request takes fails it too; args that differ are no match.
func TestUnexpectedAndUnusedCalls(t *testing.T) {
	rep, out := runExample(t, func(s string) string {
		// The first case loses its reply; the second gets an extra one.
		s = strings.Replace(s, "        args: [c-1]          # optional: the call's arguments must be these\n", "        args: [c-7]\n", 1)
		return strings.Replace(s, "vip: true}}\n    http:                    # canned",
			"vip: true}}\n      - {subject: fco.api.user.whoAmI, reply: {}}\n    http:                    # canned", 1)
	})
	r := caseNamed(t, rep, "lets other customers through")
	if r.Pass || !strings.Contains(strings.Join(r.Problems, "\n"), `unexpected request on fco.api.admin.getCustomer with {"args":["c-1"]}`) {
		t.Fatalf("unexpected request:\n%s", out)
	}
	if !strings.Contains(strings.Join(r.Problems, "\n"), "the canned reply of the request on fco.api.admin.getCustomer was not used") {
		t.Fatalf("the reply whose args differ:\n%s", out)
	}
	r = caseNamed(t, rep, "audits a VIP server within its quota")
	if r.Pass || !strings.Contains(strings.Join(r.Problems, "\n"), "the canned reply of the request on fco.api.user.whoAmI was not used") {
		t.Fatalf("unused reply:\n%s", out)
	}

	// An HTTP request nobody answers.
	rep, out = runExample(t, func(s string) string {
		return strings.Replace(s, "      - url: https://quota.example.com/vip/c-2\n", "      - url: https://quota.example.com/vip/c-3\n", 1)
	})
	r = caseNamed(t, rep, "audits a VIP server within its quota")
	if r.Pass || !strings.Contains(strings.Join(r.Problems, "\n"), "unexpected HTTP request GET https://quota.example.com/vip/c-2") {
		t.Fatalf("unexpected HTTP request:\n%s", out)
	}
}

// A bad test file is refused with file:line, and nothing runs.
func TestBadFiles(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"unknown key", "cases:\n  - name: a\n    event: {}\n    expcet: {allowed: true}\n", `x_test.yaml:4: unknown key "expcet" in case`},
		{"unknown key in expect", "cases:\n  - name: a\n    expect:\n      alowed: true\n", `x_test.yaml:4: unknown key "alowed" in expect`},
		{"unknown top key", "function: f\ncase: []\n", `x_test.yaml:2: unknown key "case" in file`},
		{"wrong type", "cases:\n  - name: a\n    expect: {allowed: maybe}\n", `x_test.yaml:3: cannot unmarshal`},
		{"no name", "cases:\n  - event: {}\n", `x_test.yaml:2: case 1 has no name`},
		{"duplicate name", "cases:\n  - name: a\n  - name: a\n", `x_test.yaml:3: case "a" is also at line 2`},
		{"two replies", "cases:\n  - name: a\n    requests:\n      - {subject: x.y, result: 1, reply: {}}\n", `x_test.yaml:4: case "a": a request needs exactly one of result, error and reply`},
		{"request without subject", "cases:\n  - name: a\n    requests:\n      - {result: 1}\n", `x_test.yaml:4: case "a": a request needs subject, or api and method`},
		{"event not a mapping", "cases:\n  - name: a\n    event: [1]\n", `x_test.yaml:3: case "a": event must be a mapping`},
		{"bad outcome", "cases:\n  - name: a\n    expect: {outcome: DONE}\n", `x_test.yaml:2: case "a": expect.outcome is "DONE"`},
		{"no cases", "function: f\n", `x_test.yaml:1: no cases`},
		{"empty", "", `x_test.yaml:1: the file is empty`},
		{"bad yaml", "cases:\n  - name: [\n", `x_test.yaml:2: did not find expected node content`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := proctest.WriteFile(t, t.TempDir(), "x_test.yaml", c.text)
			_, err := Run(context.Background(), testConfig(), []string{path})
			if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), filepath.Dir(path)+"/"+c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// A script that does not load fails each of its cases, saying why.
func TestScriptDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "broken.lua", "function register( return {} end\n")
	path := proctest.WriteFile(t, dir, "broken_test.yaml", "cases:\n  - name: a\n  - name: b\n")
	rep, err := Run(context.Background(), testConfig(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || !strings.Contains(rep.Cases[0].Problems[0], "broken.lua does not load") {
		t.Fatalf("%+v", rep)
	}
}

// -o json and --junit parse back, with the failure's diff in both.
func TestJSONAndJUnit(t *testing.T) {
	rep, _ := runExample(t, func(s string) string {
		return strings.Replace(s, "code: QUOTA_UNAVAILABLE", "code: QUOTA_GONE", 1)
	})
	var js strings.Builder
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Passed, Failed int
		Cases          []struct {
			File, Name, Function, Diff string
			Line                       int
			Pass                       bool
		}
	}
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.Passed != 4 || back.Failed != 1 || len(back.Cases) != 5 || back.Cases[3].Pass || !strings.Contains(back.Cases[3].Diff, "QUOTA_GONE") ||
		back.Cases[3].Function != "vip_check" || back.Cases[3].Line == 0 {
		t.Fatalf("json:\n%s", js.String())
	}

	var x strings.Builder
	if err := WriteJUnit(&x, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(x.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 5 || doc.Failures != 1 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 5 {
		t.Fatalf("junit:\n%s", x.String())
	}
	f := doc.Suites[0].Cases[3].Failure
	if f == nil || !strings.Contains(f.Text, `-  "code": "QUOTA_GONE"`) || doc.Suites[0].Cases[0].Failure != nil {
		t.Fatalf("junit:\n%s", x.String())
	}
}

// A POST function's case that expects a PRE decision fails, saying so;
// its publishes are compared, dataStore keeps a map per case, and a case
// names its function by ref or by entry point.
func TestPostCase(t *testing.T) {
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "count.lua", `
function register() return { "count_entry" } end
function count_entry(p)
  if p == nil then return { ref = "count", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } } end
  local data = dataStore:getPrivateDataMap()
  local runs = (data:get("runs") or 0) + 1
  data:put("runs", runs)
  dataStore:resetPrivateDataMap(data)
  trigger.publish("counted", { runs = runs })
  return { exitState = "SUCCESS" }
end
`)
	path := proctest.WriteFile(t, dir, "count_test.yaml", `
cases:
  - name: first run
    function: count_entry
    expect:
      outcome: SUCCESS
      publishes: [{subject: counted, data: {runs: 1}}]
  - name: a map of its own
    function: count
    expect:
      publishes: [{subject: counted, data: {runs: 1}}]
  - name: not a decision
    expect:
      allowed: true
      publishes: [{subject: counted, data: {runs: 1}}]
`)
	rep, err := Run(context.Background(), testConfig(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed != 2 || rep.Failed != 1 || !strings.Contains(rep.Cases[2].Problems[0], "expect.allowed is a PRE decision's, and POST_CREATE is a POST trigger type") {
		t.Fatalf("%+v", rep)
	}
}
