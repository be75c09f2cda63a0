package proctest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

// readyTimeout bounds how long a trigger-worker process may take to become
// ready.
const readyTimeout = 60 * time.Second

// metricsAddrRE finds the address in trigger-worker's "metrics endpoint"
// log line, in the text or the JSON log format.
var metricsAddrRE = regexp.MustCompile(`metrics endpoint"[ ,]"?addr"?[=:]"?([^"\s]+)`)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// WaitReady waits until a `trigger-worker run` process, configured with a
// metrics listen address, has logged the address of its HTTP endpoint and
// answers 200 on /readyz, and returns the base URL of the endpoint
// ("http://host:port"). It fails the test at once if the process exits
// meanwhile, and if it is not ready within a minute.
func (p *Process) WaitReady(t testing.TB) string {
	t.Helper()
	var base string
	natstest.CheckFor(t, readyTimeout, 10*time.Millisecond, func() error {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, Tail(p.Stderr(), 30))
		default:
		}
		if base == "" {
			m := metricsAddrRE.FindStringSubmatch(p.Stderr())
			if m == nil {
				return errors.New(p.name + " has not logged its metrics address yet")
			}
			base = "http://" + m[1]
		}
		resp, err := httpClient.Get(base + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s /readyz = %d %s", p.name, resp.StatusCode, body)
		}
		return nil
	})
	return base
}
