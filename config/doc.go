// Package config loads the configuration of trigger-worker into plain
// structs.
//
// [Load] reads a YAML file (by convention [DefaultPath]), then environment
// variables TRIGGER_<SECTION>_<KEY> (TRIGGER_NATS_URL,
// TRIGGER_DELIVERY_MAX_DELIVER, TRIGGER_NATS_EMBEDDED_STORE_DIR, ...), then
// overrides given by the caller (command-line flags), each source beating the
// one before, on top of the defaults of [Default]. Unknown keys are errors,
// and so is anything [Config.Validate] finds wrong. Every problem is reported
// at once, as an [*Error] naming the key and where its value came from:
//
//	config/trigger-worker.yaml: unknown key "nats.urll"
//	config/trigger-worker.yaml: functions[2] (ref "notify"): set exactly one of lua, webhook, exec
//	env TRIGGER_DELIVERY_ACK_WAIT: delivery.ack_wait: invalid duration "5x"
//
// [LoadDefinitions] reads the functions.yaml of a function bundle
// directory: only the functions list and scripts.dir, with relative paths
// taken from the file's directory and no environment variables.
//
// Durations are written with a unit ("500ms", "30s", "24h"); lists given in
// an environment variable or a flag are comma-separated ("1s,5s,30s").
//
// Validation here is structural: types, ranges, enums, and that each
// function has exactly one handler; a cron expression is read by package
// schedule, the one reader of cron. Whether a trigger type or option exists
// is checked by the worker (internal/matcher) against the catalogue.
//
// Passwords, tokens and keys have type [Secret], which prints and logs as
// REDACTED, so a Config can be printed or logged whole.
//
// viper is used only inside this package and only as a fresh instance per
// Load; nothing is global. Nothing under pkg/ imports this package: the
// command turns these structs into the arguments of the other packages'
// constructors.
package config
