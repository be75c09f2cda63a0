package lua_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// TestLoadScriptsReportUnwired: an entry point that describes a trigger but
// is not listed by register() is reported as not wired and not registered;
// helper functions that do not describe anything are not reported.
func TestLoadScriptsReportUnwired(t *testing.T) {
	dir := t.TempDir()
	src := `
local function helper(x) return x * 2 end
function util(x) return helper(x) end
function register() return {"wired"} end
function wired(p)
  if p == nil then
    return {ref = "wired_ref", triggerType = "POST_CREATE", triggerOptions = {"SERVER"}, api = "TRIGGER", version = 1}
  end
end
function spare(p)
  if p == nil then
    return {ref = "spare_ref", triggerType = "POST_AUTH", triggerOptions = {"SUCCESS"}, api = "TRIGGER", version = 1}
  end
end
`
	if err := os.WriteFile(filepath.Join(dir, "a.lua"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, unwired, err := lua.LoadScriptsReport(dir, lua.Options{})
	if err != nil {
		t.Fatalf("LoadScriptsReport: %v", err)
	}
	t.Cleanup(func() {
		for _, f := range fns {
			f.Handler.Close()
		}
	})
	if len(fns) != 1 || fns[0].Ref != "wired_ref" {
		t.Fatalf("functions = %+v, want only wired_ref", fns)
	}
	if len(unwired) != 1 {
		t.Fatalf("unwired = %+v, want spare only", unwired)
	}
	u := unwired[0]
	if u.Entry != "spare" || u.Ref != "spare_ref" || u.TriggerType != "POST_AUTH" || u.Line != 10 || u.Reason == "" {
		t.Errorf("unwired = %+v", u)
	}
}
