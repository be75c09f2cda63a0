package config

import "time"

// DefaultPath is the configuration file trigger-worker reads when none is
// named, relative to the working directory.
const DefaultPath = "config/trigger-worker.yaml"

// DefaultBundleHistory is how many revisions of the function bundle are
// kept by default.
const DefaultBundleHistory = 10

// Default returns the configuration used for every key that no file,
// environment variable or override sets.
func Default() Config {
	return Config{
		NATS: NATS{
			Name:     "trigger-worker",
			Embedded: Embedded{Listen: "127.0.0.1:4222", JetStream: true},
		},
		Subjects: Subjects{Prefix: "trigger", Queue: "trigger-workers"},
		Delivery: Delivery{
			Mode:            DeliveryAuto,
			MaxDeliver:      5,
			Backoff:         []time.Duration{time.Second, 5 * time.Second, 30 * time.Second},
			AckWait:         30 * time.Second,
			MaxInFlight:     256,
			MaxEventBytes:   1 << 20,
			ShutdownTimeout: 10 * time.Second,
			StreamMaxAge:    24 * time.Hour,
			StreamMaxBytes:  1 << 30,
			StreamDiscard:   StreamDiscardNew,
			Replicas:        1,
			DuplicateWindow: 2 * time.Minute,
		},
		Scripts: Scripts{APIPrefix: "fco.api", DataStoreMaxBytes: 64 << 10},
		Email:   Email{TLS: "starttls", RatePerMinute: 60, Timeout: 30 * time.Second},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "text"},
		Loop:    Loop{TTL: 5 * time.Minute},

		Registry: Registry{Refresh: time.Minute},
		Bundle:   Bundle{Source: SourceFiles, History: DefaultBundleHistory},
		DecisionLog: DecisionLog{Enabled: true, SampleAllowed: 1, Input: DecisionInputHash,
			MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30},
		Archive: Archive{MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30},
		GC:      GC{HeapFloorBytes: DefaultHeapFloorBytes},
		Tracing: Tracing{Exporter: TracingOTLPHTTP, SampleRatio: 1, ServiceName: "trigger-worker"},
	}
}
