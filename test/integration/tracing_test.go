package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
)

// exportedSpan is a span a collector received: its name, ids (hex) and
// the service.name of its resource.
type exportedSpan struct {
	name, traceID, spanID, parentID, service string
}

// collector keeps what OTLP exports brought, and the value of the
// x-api-key header (tracing.headers) of the last one.
type collector struct {
	mu     sync.Mutex
	spans  []exportedSpan
	apiKey string
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest, apiKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiKey = apiKey
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, exportedSpan{name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parentID: hex.EncodeToString(s.GetParentSpanId()), service: service})
			}
		}
	}
}

func (c *collector) byName() (map[string]exportedSpan, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]exportedSpan{}
	for _, s := range c.spans {
		m[s.name] = s
	}
	return m, c.apiKey
}

// otlpHTTP is a loopback OTLP/HTTP collector (protobuf on /v1/traces).
func otlpHTTP(t *testing.T, c *collector) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.add(&req, r.Header.Get("x-api-key"))
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// grpcCollector is a loopback OTLP/gRPC collector.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	c *collector
}

func (g grpcCollector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	key := ""
	if v := md.Get("x-api-key"); len(v) > 0 {
		key = v[0]
	}
	g.c.add(req, key)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func otlpGRPC(t *testing.T, c *collector) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcCollector{c: c})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return l.Addr().String()
}

// TestTracingExport: a worker process with tracing on continues the trace
// of client.Decide, carries it on to its webhook, and exports its spans
// over OTLP (HTTP and gRPC), with the configured headers and service name;
// the spans still buffered go out when it stops. With tracing off it sends
// no trace context on and exports nothing.
func TestTracingExport(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	for _, tt := range []struct {
		name, exporter string
		on             bool
	}{{"otlp-http", "otlp-http", true}, {"otlp-grpc", "otlp-grpc", true}, {"off", "otlp-http", false}} {
		t.Run(tt.name, func(t *testing.T) {
			exporter, on := tt.exporter, tt.on
			c := &collector{}
			endpoint := map[string]func(*testing.T, *collector) string{"otlp-http": otlpHTTP, "otlp-grpc": otlpGRPC}[exporter](t, c)
			hooks := make(chan string, 1)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hooks <- r.Header.Get("traceparent")
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(hook.Close)
			s := natstest.RunServer(t)
			dir := t.TempDir()
			cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), "", map[string]any{
				"tracing.enabled":      on,
				"tracing.exporter":     exporter,
				"tracing.endpoint":     endpoint,
				"tracing.insecure":     true,
				"tracing.headers":      map[string]string{"x-api-key": "k-123"},
				"tracing.service_name": "worker-under-test",
				"functions": []map[string]any{{"ref": "hook", "trigger_type": "PRE_CREATE", "trigger_options": []string{"SERVER"},
					"webhook": map[string]any{"url": hook.URL}}},
			})
			p := proctest.Start(t, bin, "run", "-c", cfg)
			waitInterest(t, s, "trigger.PRE_CREATE.SERVER")

			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			cl := newClient(t, s, client.Options{TracerProvider: tp, Propagator: propagation.TraceContext{}, NoRegistryWatch: true})
			d, err := cl.Decide(context.Background(), "PRE_CREATE", "SERVER", nil)
			if err != nil || !d.Allowed || len(d.Functions) != 1 {
				t.Fatalf("Decide = %+v, %v; want allowed by the webhook", d, err)
			}
			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("client spans %v, want one", ended)
			}
			send := ended[0].SpanContext()
			traceparent := natstest.ChanRecv(t, hooks, waitShort)
			if on && !strings.HasPrefix(traceparent, "00-"+send.TraceID().String()+"-") {
				t.Errorf("webhook traceparent %q, want trace %s", traceparent, send.TraceID())
			}
			p.Stop(t) // flushes the spans the batcher holds
			if !on {
				if traceparent != "" {
					t.Errorf("webhook traceparent %q from a worker with tracing off", traceparent)
				}
				if spans, _ := c.byName(); len(spans) != 0 {
					t.Errorf("exported %v with tracing off", spans)
				}
				return
			}

			spans, apiKey := c.byName()
			process, fn, reply := spans["process trigger.PRE_CREATE.SERVER"], spans["function hook"], spans["reply"]
			if process.spanID == "" || fn.spanID == "" || reply.spanID == "" {
				t.Fatalf("exported spans %v, want process, function hook and reply\nworker stderr:\n%s", spans, proctest.Tail(p.Stderr(), 20))
			}
			for _, sp := range []exportedSpan{process, fn, reply} {
				if sp.traceID != send.TraceID().String() || sp.service != "worker-under-test" {
					t.Errorf("span %q: trace %s, service %q; want trace %s, service worker-under-test", sp.name, sp.traceID, sp.service, send.TraceID())
				}
			}
			for _, link := range []struct{ child, parent, parentID string }{
				{process.name, "the client's span", send.SpanID().String()},
				{fn.name, process.name, process.spanID},
				{reply.name, process.name, process.spanID},
			} {
				if got := spans[link.child].parentID; got != link.parentID {
					t.Errorf("span %q: parent %s, want %s (%s)", link.child, got, link.parentID, link.parent)
				}
			}
			if want := fmt.Sprintf("00-%s-%s-01", send.TraceID(), fn.spanID); traceparent != want {
				t.Errorf("webhook traceparent %q, want %q (the function's span)", traceparent, want)
			}
			if apiKey != "k-123" {
				t.Errorf("export header x-api-key = %q, want k-123", apiKey)
			}
		})
	}
}
