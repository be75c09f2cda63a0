package proctest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// DenyScript is an FDL script with one PRE_CREATE SERVER function,
// deny_big, that refuses servers of more than 16 CPUs (errorCode
// QUOTA_EXCEEDED, errorMessage "too many CPUs") and lets the others
// through.
const DenyScript = `
function register() return { "deny_big" } end

function deny_big(p)
  if p == nil then
    return { ref = "deny_big", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  local cpu = type(p.input) == "table" and tonumber(p.input.cpu) or nil
  if cpu ~= nil and cpu > 16 then
    return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs" }
  end
  return { exitState = "SUCCESS" }
end
`

// WriteWorkerConfig writes dir/trigger-worker.yaml, the configuration of a
// trigger-worker process of an end-to-end test, and returns its path: NATS
// at url, core delivery, the FDL scripts of scriptsDir, and the metrics
// endpoint on a free port of 127.0.0.1 (which [Process.WaitReady] reads).
// set adds keys or replaces those, each a dotted key with its value:
//
//	proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{
//		"delivery.mode": "durable",
//		"log.level":     "debug",
//	})
func WriteWorkerConfig(t testing.TB, dir, url, scriptsDir string, set map[string]any) string {
	t.Helper()
	doc := map[string]any{}
	keys := map[string]any{
		"nats.url":       url,
		"delivery.mode":  "core",
		"scripts.dir":    scriptsDir,
		"metrics.listen": "127.0.0.1:0",
	}
	maps.Copy(keys, set)
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		m := doc
		path := strings.Split(key, ".")
		for _, section := range path[:len(path)-1] {
			sub, ok := m[section].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[section] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = keys[key]
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("worker config: %v", err)
	}
	return WriteFile(t, dir, "trigger-worker.yaml", string(data))
}
