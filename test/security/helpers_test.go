package security_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed.
const (
	waitShort = 15 * time.Second
	waitLong  = 60 * time.Second
	poll      = 10 * time.Millisecond
)

// TestMain removes the programs the tests build (see proctest.Main).
func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// startProcess runs trigger-worker with args and env added to its
// environment (see proctest.StartWith).
func startProcess(t testing.TB, env []string, args ...string) *proctest.Process {
	t.Helper()
	return proctest.StartWith(t, proctest.Options{Env: env}, proctest.Build(t, "./cmd/trigger-worker"), args...)
}

// run runs trigger-worker with args and env added to its environment to
// the end, and returns its exit code and output (see proctest.RunWith).
func run(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return proctest.RunWith(t, proctest.Options{Env: env}, proctest.Build(t, "./cmd/trigger-worker"), args...)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(url string) (string, int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// denyBig is a PRE_CREATE function that refuses inputs with cpu > 16.
func denyBig() worker.Function {
	return worker.Function{Ref: "deny_big", TriggerType: "PRE_CREATE", Options: []string{"ANY"},
		Handler: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			if bytes.Contains(ev.Input, []byte(`"cpu":64`)) {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"}, nil
			}
			return handlers.Result{ExitState: handlers.Success}, nil
		})}
}
