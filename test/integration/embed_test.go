package integration

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEmbedExample runs examples/embed (its own NATS server and a Go
// function) and asks it for a decision with trigger-worker emit and with a
// raw NATS request: both print the same decision.
func TestEmbedExample(t *testing.T) {
	bin := proctest.Build(t, "./examples/embed")
	cli := proctest.Build(t, triggerWorkerPkg)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	url := "nats://" + addr
	p := proctest.Start(t, bin, "--listen", addr)

	// Ready when the embedded server takes connections and the worker
	// answers.
	body := []byte(`{"input":{"cpu":64}}`)
	var raw []byte
	natstest.CheckFor(t, waitLong, 50*time.Millisecond, func() error {
		select {
		case <-p.Exited():
			return nil // reported below
		default:
		}
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		reply, err := nc.Request("trigger.PRE_CREATE.SERVER", body, 2*time.Second)
		if err != nil {
			return err
		}
		raw = reply.Data
		return nil
	})
	if raw == nil {
		t.Fatalf("examples/embed exited early: %v", p.Err())
	}
	d := decodeDecision(t, raw)
	if d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Message != "servers are limited to 16 CPUs" || d.Function != "deny_big_servers" {
		t.Errorf("raw request got %s, want the QUOTA_EXCEEDED refusal of deny_big_servers", raw)
	}

	code, stdout, stderr := proctest.Run(t, cli, "emit", "--nats-url", url, "PRE_CREATE", "SERVER", string(body))
	if code != 0 {
		t.Fatalf("emit exit code %d, stderr:\n%s", code, stderr)
	}
	sameDecision(t, "emit vs raw request", []byte(stdout), raw)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	small := decodeDecision(t, request(t, nc, &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Data: []byte(`{"input":{"cpu":4}}`)}))
	if !small.Allowed {
		t.Errorf("a 4-CPU server: %+v, want allowed", small)
	}

	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t); code != 0 {
		t.Errorf("examples/embed exit code %d after SIGTERM, want 0", code)
	}
}
