package config

import (
	"fmt"
	"log/slog"
	"time"
)

// Config is the whole configuration of trigger-worker. Start from [Default]
// when building one in code: Validate checks the values as they are, and the
// zero value of most sections is invalid.
type Config struct {
	NATS      NATS       `mapstructure:"nats"`
	Subjects  Subjects   `mapstructure:"subjects"`
	Delivery  Delivery   `mapstructure:"delivery"`
	Scripts   Scripts    `mapstructure:"scripts"`
	Email     Email      `mapstructure:"email"`
	Functions []Function `mapstructure:"functions"`
	Metrics   Metrics    `mapstructure:"metrics"`
	Log       Log        `mapstructure:"log"`
	Loop      Loop       `mapstructure:"loop"`
	Registry  Registry   `mapstructure:"registry"`
	Loading   Loading    `mapstructure:"loading"`
	Bundle    Bundle     `mapstructure:"bundle"`
	// DecisionLog configures the log of PRE decisions.
	DecisionLog DecisionLog `mapstructure:"decision_log"`
	// Archive configures the event archive, for replay.
	Archive Archive `mapstructure:"archive"`
	// GC configures the garbage collector of the worker process.
	GC GC `mapstructure:"gc"`
	// Tracing configures OpenTelemetry traces of the events handled.
	Tracing Tracing `mapstructure:"tracing"`

	// File is the file the configuration was loaded from, "" if none. Load
	// sets it; it is not a key.
	File string `mapstructure:"-"`
}

// NATS is how the worker reaches NATS.
type NATS struct {
	// URL is the server URL, or a comma-separated list of URLs of one cluster
	// (schemes nats, tls, ws, wss). "" starts the embedded server described
	// by Embedded instead.
	URL string `mapstructure:"url"`
	// Creds is the path of a credentials file (JWT and nkey seed).
	Creds string `mapstructure:"creds"`
	// NKey is the path of an nkey seed file.
	NKey string `mapstructure:"nkey"`
	// User and Password are for username/password authentication.
	User     string `mapstructure:"user"`
	Password Secret `mapstructure:"password"`
	// Token is for token authentication.
	Token Secret `mapstructure:"token"`
	// TLS configures TLS towards the server; all empty uses the system roots
	// for tls:// and wss:// URLs.
	TLS TLS `mapstructure:"tls"`
	// Embedded configures the server started when URL is "".
	Embedded Embedded `mapstructure:"embedded"`
	// Name is the connection name the server shows; default "trigger-worker".
	Name string `mapstructure:"name"`
}

// TLS holds PEM file paths. Cert and Key are both set (client certificate)
// or both empty.
type TLS struct {
	// CA is a file of root certificates to trust instead of the system's.
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Embedded configures the in-process NATS server started when nats.url is
// empty.
type Embedded struct {
	// Listen is the client address; default "127.0.0.1:4222".
	Listen string `mapstructure:"listen"`
	// StoreDir is the JetStream directory; "" means the per-user state
	// directory, $XDG_STATE_HOME/triggerbus or ~/.local/state/triggerbus.
	// One worker at a time uses it (a lock file in it).
	StoreDir string `mapstructure:"store_dir"`
	// JetStream enables JetStream; default true.
	JetStream bool `mapstructure:"jetstream"`
}

// Subjects configures the subjects events are published on.
type Subjects struct {
	// Prefix is the first token(s) of every subject, <prefix>.<TYPE>.<OPTION>;
	// default "trigger". It may have several tokens ("fco.eu1.trigger").
	Prefix string `mapstructure:"prefix"`
	// Queue is the queue group the workers share; default "trigger-workers".
	Queue string `mapstructure:"queue"`
}

// Delivery modes.
const (
	DeliveryAuto    = "auto"    // durable when the server has JetStream, else core
	DeliveryCore    = "core"    // queue subscriptions, at most once
	DeliveryDurable = "durable" // JetStream stream and pull consumer, at least once
)

// What a full event stream does (delivery.stream_discard).
const (
	StreamDiscardNew = "new" // refuse new events: publishers see an error
	StreamDiscardOld = "old" // delete the oldest events, undelivered ones too
)

// Delivery configures how POST and SCHEDULED events reach the workers.
type Delivery struct {
	// Mode is DeliveryAuto (default), DeliveryCore or DeliveryDurable.
	Mode string `mapstructure:"mode"`
	// MaxDeliver is how many times a durable event is attempted before it is
	// dead-lettered; default 5, -1 is unlimited.
	MaxDeliver int `mapstructure:"max_deliver"`
	// Backoff is the delay before each redelivery, the last one repeating;
	// default [1s, 5s, 30s].
	Backoff []time.Duration `mapstructure:"backoff"`
	// AckWait is how long a delivered event may run before it is redelivered;
	// default 30s.
	AckWait time.Duration `mapstructure:"ack_wait"`
	// MaxInFlight bounds the function invocations running at once per worker;
	// default 256.
	MaxInFlight int `mapstructure:"max_in_flight"`
	// MaxEventBytes is the largest event payload accepted; default 1 MiB.
	MaxEventBytes int `mapstructure:"max_event_bytes"`
	// ShutdownTimeout bounds how long shutdown waits for in-flight functions;
	// default 10s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// StreamMaxAge is the longest an event stays in the stream; default 24h,
	// 0 is unlimited.
	StreamMaxAge time.Duration `mapstructure:"stream_max_age"`
	// StreamMaxBytes is the size limit of the stream; default 1 GiB, -1 is
	// unlimited.
	StreamMaxBytes int64 `mapstructure:"stream_max_bytes"`
	// StreamDiscard is what a full stream does: StreamDiscardNew (default)
	// refuses new events, so a durable publish fails and the publisher
	// knows; StreamDiscardOld deletes the oldest events, delivered or not,
	// without telling anyone.
	StreamDiscard string `mapstructure:"stream_discard"`
	// Replicas is the replication factor (1 to 5) of the streams and buckets
	// the worker creates or updates (events, dead letters, decision log),
	// and of the PRE registry bucket when a worker creates it; default 1.
	Replicas int `mapstructure:"replicas"`
	// DuplicateWindow is how long the stream remembers event ids to drop
	// duplicates; default 2m.
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
}

// Scripts configures the FDL (Lua) scripts functions are loaded from.
type Scripts struct {
	// Dir is the directory of *.lua scripts; "" loads no scripts.
	Dir string `mapstructure:"dir"`
	// APIPrefix is the subject prefix of the orchestrator API bridged to
	// scripts' adminAPI/userAPI (<prefix>.admin.<method>); default "fco.api".
	APIPrefix string `mapstructure:"api_prefix"`
	// MaxMemoryBytes caps the memory one call of a script may hold (its
	// tables, strings and functions); 0 means the Lua kind's default, 64
	// MiB. A call over it fails like any script error.
	MaxMemoryBytes int64 `mapstructure:"max_memory_bytes"`
	// DenyPrivateNetworks makes the simplehttp requests of every FDL script
	// (from Dir and from functions' lua) refuse to connect to loopback,
	// private, link-local and other non-public addresses, as a webhook's
	// deny_private_networks does; default false.
	DenyPrivateNetworks bool `mapstructure:"deny_private_networks"`
	// DataStoreMaxBytes caps the JSON of the private data map each function
	// keeps with dataStore (in the JetStream bucket <PREFIX>_DATASTORE);
	// default 65536.
	DataStoreMaxBytes int `mapstructure:"data_store_max_bytes"`
	// Messages is the catalogue of translate.string: a key it lacks
	// translates to itself. Default none.
	Messages []Message `mapstructure:"messages"`
}

// Message is an entry of the catalogue of translate.string. Its key is a
// field rather than a YAML key, so that keys keep their case and dots.
type Message struct {
	// Key is what scripts pass to translate.string. Required, unique.
	Key string `mapstructure:"key"`
	// Text is what translate.string returns; {0}, {1}, ... are replaced by
	// its other arguments.
	Text string `mapstructure:"text"`
}

// Email configures the SMTP relay through which FDL scripts send mail
// (FDLEmailHelper).
type Email struct {
	// Host is the relay's host name; "" (the default) means no relay, and
	// FDLEmailHelper fails the calls that use it.
	Host string `mapstructure:"host"`
	// Port is the relay's port; default 0: 587 with starttls, 465 with tls,
	// 25 with none.
	Port int `mapstructure:"port"`
	// TLS is starttls (default: STARTTLS, which the relay must offer), tls
	// (TLS from the first byte) or none.
	TLS string `mapstructure:"tls"`
	// CA is a PEM file of the certificates to trust for the relay instead
	// of the system's.
	CA string `mapstructure:"ca"`
	// Username and Password authenticate to the relay when Username is set.
	Username string `mapstructure:"username"`
	Password Secret `mapstructure:"password"`
	// From is the sender of every message. Required when Host is set.
	From string `mapstructure:"from"`
	// RatePerMinute is how many messages a worker sends a minute, in bursts
	// of up to that many; more fail. Default 60.
	RatePerMinute int `mapstructure:"rate_per_minute"`
	// Timeout bounds sending one message; default 30s.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Metrics configures the HTTP endpoint of /metrics, /healthz and /readyz.
type Metrics struct {
	// Listen is the address; default "127.0.0.1:9464". "" or "off" disables
	// the endpoint.
	Listen string `mapstructure:"listen"`
}

// Enabled reports whether the metrics endpoint is on.
func (m Metrics) Enabled() bool { return m.Listen != "" && m.Listen != "off" }

// DefaultHeapFloorBytes is GC.HeapFloorBytes's default.
const DefaultHeapFloorBytes = 8 << 20

// GC configures the garbage collector of the worker process.
type GC struct {
	// HeapFloorBytes is the heap the worker lets grow before a collection
	// while its live heap is small: GOGC is raised after each collection so
	// that the next one is due at this size, and left at Go's default (100)
	// once the live heap is half of it or more. Default 8 MiB; 0 leaves
	// the collector as Go sets it. A GOGC or GOMEMLIMIT environment
	// variable takes precedence: the floor is then off.
	HeapFloorBytes int64 `mapstructure:"heap_floor_bytes"`
}

// Tracing exporters, the values of Tracing.Exporter.
const (
	TracingOTLPHTTP = "otlp-http"
	TracingOTLPGRPC = "otlp-grpc"
)

// Tracing configures OpenTelemetry traces: a span for each event the worker
// handles, continuing the trace of its publisher (W3C traceparent and
// tracestate headers), a span for each function call and for the reply or
// ack, exported over OTLP.
type Tracing struct {
	// Enabled turns tracing on; default false: the worker makes no span and
	// sends no trace context on.
	Enabled bool `mapstructure:"enabled"`
	// Exporter is otlp-http (default, OTLP over HTTP with protobuf) or
	// otlp-grpc.
	Exporter string `mapstructure:"exporter"`
	// Endpoint is the collector's host:port; "" means 127.0.0.1:4318 for
	// otlp-http and 127.0.0.1:4317 for otlp-grpc.
	Endpoint string `mapstructure:"endpoint"`
	// Insecure exports without TLS (a collector on the host or in the pod);
	// default false: TLS, verified with the system's roots.
	Insecure bool `mapstructure:"insecure"`
	// Headers are sent with every export (an API key of a tracing service).
	// Their values are not logged.
	Headers map[string]Secret `mapstructure:"headers"`
	// SampleRatio is the share of the traces that start at the worker (an
	// event without a traceparent) that are recorded, 0 to 1; default 1. An
	// event with a traceparent follows its publisher's sampling decision.
	SampleRatio float64 `mapstructure:"sample_ratio"`
	// ServiceName is the service.name of the spans; default "trigger-worker".
	ServiceName string `mapstructure:"service_name"`
}

// Log configures the worker's log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `mapstructure:"level"`
	// Format is text (default) or json.
	Format string `mapstructure:"format"`
}

// Loop configures the Trigger-Origin loop flag.
type Loop struct {
	// Key is the fleet's HMAC key. When set, Trigger-Origin values are signed
	// and only values that verify are honoured. Every worker needs the same
	// key.
	Key Secret `mapstructure:"key"`
	// TTL is how long a signed Trigger-Origin stays valid; default 5m, at
	// most MaxLoopTTL.
	TTL time.Duration `mapstructure:"ttl"`
}

// Registry configures the worker's entries in the PRE registry, the
// JetStream bucket that tells callers "no trigger" from "no worker".
type Registry struct {
	// Instance names this worker process in the registry; it adds and
	// removes only its own registrations. "" means the host name and a
	// random suffix, new for every process. Two running processes must not
	// share one.
	Instance string `mapstructure:"instance"`
	// Refresh is how often the worker rewrites its registrations with a new
	// last-seen time; default 1m. Registrations never expire.
	Refresh time.Duration `mapstructure:"refresh"`
}

// Decision log input settings, the values of DecisionLog.Input.
const (
	DecisionInputNone = "none"
	DecisionInputHash = "hash"
	DecisionInputFull = "full"
)

// DecisionLog configures the decision log: every PRE decision published,
// after it was answered, to the JetStream stream <PREFIX>_DECISIONS.
type DecisionLog struct {
	// Enabled turns the log on; default true. It is written only when the
	// NATS server has JetStream.
	Enabled bool `mapstructure:"enabled"`
	// DeniedOnly logs refusals only; default false.
	DeniedOnly bool `mapstructure:"denied_only"`
	// SampleAllowed is the share of allowed decisions logged, 0 to 1;
	// default 1 (all). Refusals are always logged.
	SampleAllowed float64 `mapstructure:"sample_allowed"`
	// Input is how much of a request's event a record keeps: none, hash
	// (its SHA-256; default) or full.
	Input string `mapstructure:"input"`
	// MaxAge is how long records are kept; default 168h (7 days).
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxBytes bounds the stream, the oldest records going first; default
	// 1 GiB, -1 is unlimited.
	MaxBytes int64 `mapstructure:"max_bytes"`
}

// Archive configures the event archive: the JetStream stream
// <PREFIX>_ARCHIVE sources the event stream, so that POST and SCHEDULED
// events stay after they were handled, for `trigger-worker replay`. It
// needs durable delivery: events delivered in core mode are not archived.
type Archive struct {
	// Enabled turns the archive on; default false.
	Enabled bool `mapstructure:"enabled"`
	// MaxAge is how long events are kept; default 168h (7 days), 0 is
	// unlimited.
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxBytes bounds the archive, the oldest events going first; default
	// 1 GiB, -1 is unlimited.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// Replicas is the stream's replication factor (1 to 5); 0 (the
	// default) means delivery.replicas.
	Replicas int `mapstructure:"replicas"`
}

// Loading configures what trigger-worker does with functions that do not
// load.
type Loading struct {
	// AllowPartial serves the functions that loaded when others did not (a
	// script with an error, an unknown trigger type, ...), warning at every
	// load. false (the default) refuses to start with any problem, and a
	// reload with any problem keeps the functions already served.
	AllowPartial bool `mapstructure:"allow_partial"`
}

// Function sources.
const (
	SourceFiles  = "files"  // the functions and scripts.dir of this config
	SourceBundle = "bundle" // the active revision of the fleet's function bundle
)

// Bundle configures the fleet's function bundle: the functions and scripts
// pushed to JetStream as one revision (trigger-worker functions push).
//
// trigger-worker functions uses History and TrustedKeys; run uses Source
// and TrustedKeys.
type Bundle struct {
	// Source is where a worker takes its functions from: SourceFiles (the
	// default) or SourceBundle. With SourceBundle the Functions and
	// Scripts.Dir of this config are not served.
	Source string `mapstructure:"source"`
	// TrustedKeys are the public nkeys (U...) whose signatures are accepted.
	// When set, a revision that is unsigned, signed by another key or whose
	// files do not match the signed hashes is refused. Empty (the default)
	// accepts unsigned revisions.
	TrustedKeys []string `mapstructure:"trusted_keys"`
	// History is how many revisions functions push keeps, the active one
	// always besides; default 10.
	History int `mapstructure:"history"`
}

// Function failure policies and modes (PRE functions only).
const (
	FailurePolicyFail   = "fail"    // an error or timeout refuses the action
	FailurePolicyIgnore = "ignore"  // an error or timeout counts as CONTINUE
	ModeEnforce         = "enforce" // the function's decision counts
	ModeShadow          = "shadow"  // the decision is recorded, never applied
)

// Function is a trigger function registered in the config file. Exactly one
// of Lua, Webhook and Exec is set.
type Function struct {
	// Ref is the function's unique name.
	Ref string `mapstructure:"ref"`
	// TriggerType is a trigger type of the catalogue, e.g. "PRE_CREATE".
	TriggerType string `mapstructure:"trigger_type"`
	// TriggerOptions are the options it runs for; "ANY" means all.
	TriggerOptions []string `mapstructure:"trigger_options"`
	// Priority orders functions of the same event, lowest first.
	Priority int `mapstructure:"priority"`
	// Timeout bounds one call; 0 means the default, 5s.
	Timeout time.Duration `mapstructure:"timeout"`
	// FailurePolicy is FailurePolicyFail or FailurePolicyIgnore, PRE only;
	// "" means fail.
	FailurePolicy string `mapstructure:"failure_policy"`
	// Mode is ModeEnforce or ModeShadow, PRE only; "" means enforce.
	Mode string `mapstructure:"mode"`
	// Schedule is when a SCHEDULED function runs.
	Schedule *Schedule `mapstructure:"schedule"`

	Lua     *LuaFunc     `mapstructure:"lua"`
	Webhook *WebhookFunc `mapstructure:"webhook"`
	Exec    *ExecFunc    `mapstructure:"exec"`
}

// Schedule is a SCHEDULED function's timing: exactly one of Every and Cron.
type Schedule struct {
	// Every runs the function at this interval.
	Every time.Duration `mapstructure:"every"`
	// Cron is a five-field cron expression (minute hour day-of-month month
	// day-of-week).
	Cron string `mapstructure:"cron"`
	// Timezone is the IANA zone Cron and Start are read in; "" is UTC.
	Timezone string `mapstructure:"timezone"`
	// Start, "HH:MM" or "HH:MM:SS", anchors Every to a time of day (Every
	// 24h with Start 23:59 runs daily at 23:59); "" anchors to midnight.
	Start string `mapstructure:"start"`
	// BEUUID is the billing entity the ticks belong to: each tick event
	// carries it as beUUID. "" means none.
	BEUUID string `mapstructure:"be_uuid"`
	// CustomerUUID is the customer the ticks belong to, carried as
	// customer.resourceUUID; it needs BEUUID. "" means none.
	CustomerUUID string `mapstructure:"customer_uuid"`
}

// LuaFunc is a function written as an FDL (Lua) script.
type LuaFunc struct {
	// File is the script's path.
	File string `mapstructure:"file"`
	// Entry is the entry-point function to call; "" means the script's one
	// entry point.
	Entry string `mapstructure:"entry"`
}

// WebhookFunc is a function served over HTTP.
type WebhookFunc struct {
	// URL is the http or https endpoint the event is POSTed to.
	URL string `mapstructure:"url"`
	// Secret signs requests (Standard Webhooks); "" sends them unsigned.
	Secret Secret `mapstructure:"secret"`
	// Timeout bounds the HTTP call; 0 means the function's timeout.
	Timeout time.Duration `mapstructure:"timeout"`
	// Headers are sent with every request. Names arrive lower-cased
	// (HTTP header names are case-insensitive).
	Headers map[string]string `mapstructure:"headers"`
	// CA is a PEM file of root certificates to trust instead of the system's.
	CA string `mapstructure:"ca"`
	// MaxBodyBytes caps the response body read; 0 means the handler's
	// default.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// DenyPrivateNetworks refuses to connect to loopback, private and
	// link-local addresses.
	DenyPrivateNetworks bool `mapstructure:"deny_private_networks"`
	// Format is how the event is sent: WebhookFormatJSON (the event as the
	// JSON body) or WebhookFormatCloudEvents (a binary-mode CloudEvent whose
	// data is the event); "" means json.
	Format string `mapstructure:"format"`
}

// The webhook formats (WebhookFunc.Format).
const (
	WebhookFormatJSON        = "json"
	WebhookFormatCloudEvents = "cloudevents"
)

// ExecFunc is a function run as an external command.
type ExecFunc struct {
	// Command is the argv; it is never run through a shell.
	Command []string `mapstructure:"command"`
	// Env names environment variables of the worker passed to the command.
	Env []string `mapstructure:"env"`
	// Dir is the working directory; "" is the worker's.
	Dir string `mapstructure:"dir"`
	// MaxOutputBytes caps the output read; 0 means the handler's default.
	MaxOutputBytes int64 `mapstructure:"max_output_bytes"`
}

// Secret is a string that must not appear in output: it prints, logs and
// marshals as REDACTED (or "" when empty). Convert it with string(s) where
// the value is needed.
type Secret string

const redacted = "REDACTED"

// String returns REDACTED, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String quoted, for the %#v verb.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements [encoding.TextMarshaler] so that JSON and YAML
// encoders redact the secret too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
