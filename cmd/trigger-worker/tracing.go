package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/config"
)

// tracingFlushTimeout bounds the export of the spans still buffered when the
// worker stops.
const tracingFlushTimeout = 5 * time.Second

// newTracing returns the tracer provider of the tracing section and the
// function that flushes and stops it (after the worker stopped). With
// tracing off it returns a nil provider, so that the worker holds no tracer
// at all, and a no-op stop. The exporter connects lazily: a collector that
// is down loses spans (logged by OpenTelemetry's error handler) and never
// blocks an event.
func newTracing(ctx context.Context, c config.Tracing, log *slog.Logger) (trace.TracerProvider, func(), error) {
	if !c.Enabled {
		return nil, func() {}, nil
	}
	exp, err := newExporter(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(c.ServiceName), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	tlog := log.With("component", "tracing")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { tlog.Warn("tracing", "err", err) }))
	tlog.Info("tracing", "exporter", c.Exporter, "endpoint", endpointOf(c), "insecure", c.Insecure, "sample_ratio", c.SampleRatio)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			tlog.Warn("tracing: spans not exported at shutdown", "err", err)
		}
	}
	return tp, stop, nil
}

// endpointOf returns the collector address of c, the exporter's default
// when none is set.
func endpointOf(c config.Tracing) string {
	switch {
	case c.Endpoint != "":
		return c.Endpoint
	case c.Exporter == config.TracingOTLPGRPC:
		return "127.0.0.1:4317"
	default:
		return "127.0.0.1:4318"
	}
}

func newExporter(ctx context.Context, c config.Tracing) (sdktrace.SpanExporter, error) {
	headers := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		headers[k] = string(v)
	}
	if c.Exporter == config.TracingOTLPGRPC {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpointOf(c)), otlptracegrpc.WithHeaders(headers)}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(endpointOf(c)), otlptracehttp.WithHeaders(headers)}
	if c.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	return otlptracehttp.New(ctx, opts...)
}
