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
	base := p.MetricsURL(t)
	natstest.CheckFor(t, readyTimeout, 10*time.Millisecond, func() error {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, Tail(p.Stderr(), 30))
		default:
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

// metricsURL is the base URL of the HTTP endpoint the process has logged,
// "" before it has.
func (p *Process) metricsURL() string {
	m := metricsAddrRE.FindStringSubmatch(p.Stderr())
	if m == nil {
		return ""
	}
	return "http://" + m[1]
}

// MetricsURL waits until a `trigger-worker run` process has logged the
// address of its HTTP endpoint, ready or not, and returns its base URL. It
// fails the test if the process exits first, or after a minute.
func (p *Process) MetricsURL(t testing.TB) string {
	t.Helper()
	var base string
	natstest.CheckFor(t, readyTimeout, 10*time.Millisecond, func() error {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, Tail(p.Stderr(), 30))
		default:
		}
		if base = p.metricsURL(); base == "" {
			return errors.New(p.name + " has not logged its metrics address yet")
		}
		return nil
	})
	return base
}
