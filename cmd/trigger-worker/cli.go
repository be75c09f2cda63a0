package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// version and revision are set at build time with -ldflags -X; else they
// come from the build information (fromBuildInfo).
var (
	version  = "dev"
	revision = "unknown"
)

// errQuiet marks an error whose message was already printed.
var errQuiet = errors.New("reported")

// usageError is bad usage or bad configuration: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `usage: trigger-worker [command] [flags]

commands:
  run      run the worker (the default)
  check    load the config and scripts, print the functions and their subjects, exit 2 on any problem
  emit     TYPE OPTION [JSON|@file]: publish a POST event or ask for a PRE decision and print the reply
  dlq      ls|show SEQ|replay SEQ|replay --all|purge: list, inspect, replay or purge the dead letters
  decisions [--denied] [--type T] [--option O] [--code C] [--since 1h] [--until T] [--follow] [-o table|json]:
           print the PRE decisions of the decision log
  replay   --since 2h [--until T] [--type T] [--option O] [--function REF] [--dry-run] [--rate N/s]:
           publish the archived events of a time window again (archive.enabled)
  registry ls|prune: list the PRE registry's registrations by worker instance, remove those of gone instances
  functions push|ls|show|diff|activate|pull|keygen: the fleet's functions as one versioned, signed bundle
  version  print the version

Run 'trigger-worker COMMAND -h' for the flags of a command.
`

// run is the whole program: it parses args and runs a command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runWorker(ctx, args, stdout, stderr)
	case "check":
		return runCheck(ctx, args, stdout, stderr)
	case "emit":
		return runEmit(ctx, args, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, args, stdout, stderr)
	case "decisions":
		return runDecisions(ctx, args, stdout, stderr)
	case "replay":
		return runReplay(ctx, args, stdout, stderr)
	case "registry":
		return runRegistry(ctx, args, stdout, stderr)
	case "functions":
		return runFunctions(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "trigger-worker %s (%s)\n", version, revision)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", cmd)
}

// commonFlags are the flags every command takes: the config file and
// overrides of the most used keys.
type commonFlags struct {
	fs         *flag.FlagSet
	configPath string
	overrides  map[string]*string
}

var overrideFlags = []struct{ name, key, help string }{
	{"nats-url", "nats.url", "NATS server URL(s), comma-separated; empty starts the embedded server"},
	{"nats-creds", "nats.creds", "NATS credentials file"},
	{"prefix", "subjects.prefix", "subject prefix"},
	{"queue", "subjects.queue", "queue group of the workers"},
	{"scripts-dir", "scripts.dir", "directory of FDL (*.lua) scripts"},
	{"metrics-listen", "metrics.listen", "address of /metrics, /healthz and /readyz (\"off\" disables)"},
	{"log-level", "log.level", "log level: debug, info, warn, error"},
	{"log-format", "log.format", "log format: text or json"},
	{"delivery-mode", "delivery.mode", "POST delivery: auto, core or durable"},
	{"embedded-listen", "nats.embedded.listen", "client address of the embedded NATS server"},
	{"embedded-store-dir", "nats.embedded.store_dir", "JetStream directory of the embedded NATS server"},
}

func newCommonFlags(name string, stderr io.Writer) *commonFlags {
	c := &commonFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError), overrides: map[string]*string{}}
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.configPath, "c", "", "config file (default "+config.DefaultPath+" if present)")
	c.fs.StringVar(&c.configPath, "config", "", "config file (same as -c)")
	for _, f := range overrideFlags {
		c.overrides[f.key] = c.fs.String(f.name, "", f.help+" (config "+f.key+")")
	}
	return c
}

func (c *commonFlags) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errQuiet
		}
		return &usageError{errQuiet}
	}
	return nil
}

// load reads the configuration the flags name.
func (c *commonFlags) load() (config.Config, error) {
	path := c.configPath
	if path == "" {
		path = config.FindDefault()
	} else if _, err := os.Stat(path); err != nil {
		return config.Config{}, usagef("config file: %w", err)
	}
	ov := map[string]any{}
	c.fs.Visit(func(f *flag.Flag) {
		for _, o := range overrideFlags {
			if o.name == f.Name {
				ov[o.key] = f.Value.String()
			}
		}
	})
	cfg, err := config.Load(path, ov)
	if err != nil {
		return cfg, &usageError{err}
	}
	return cfg, nil
}

// subcommand sets the usage text of a tool command (dlq, registry,
// functions), parses its flags wherever they stand, and returns its
// subcommand and the arguments after it; commands lists the subcommands
// for the error when none is given.
func subcommand(cf *commonFlags, usage, commands string, args []string, stderr io.Writer) (string, []string, error) {
	cf.fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		cf.fs.PrintDefaults()
	}
	pos, err := parseInterspersed(cf, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) == 0 {
		cf.fs.Usage()
		return "", nil, usagef("%s takes a command: %s", cf.fs.Name(), commands)
	}
	return pos[0], pos[1:], nil
}

// newLogger builds the process logger from the log section.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.LevelVar
	switch cfg.Level {
	case "debug":
		level.Set(slog.LevelDebug)
	case "warn":
		level.Set(slog.LevelWarn)
	case "error":
		level.Set(slog.LevelError)
	default:
		level.Set(slog.LevelInfo)
	}
	opts := &slog.HandlerOptions{Level: &level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// connectConfig is the connection settings of the nats section, for url.
func connectConfig(cfg config.NATS, url, name string) natsconn.Config {
	return natsconn.Config{
		URL: url, Name: name, Creds: cfg.Creds, NKey: cfg.NKey,
		User: cfg.User, Password: string(cfg.Password), Token: string(cfg.Token),
		TLSCA: cfg.TLS.CA, TLSCert: cfg.TLS.Cert, TLSKey: cfg.TLS.Key,
	}
}

// toolJetStream loads the configuration of a tool command and connects to
// its NATS with JetStream; the caller closes the connection.
func toolJetStream(cf *commonFlags, name string, timeout time.Duration) (subjects.Scheme, *nats.Conn, jetstream.JetStream, error) {
	cfg, err := cf.load()
	if err != nil {
		return subjects.Scheme{}, nil, nil, err
	}
	scheme, err := subjects.NewScheme(cfg.Subjects.Prefix)
	if err != nil {
		return subjects.Scheme{}, nil, nil, &usageError{err}
	}
	nc, err := connectTool(cfg.NATS, name)
	if err != nil {
		return subjects.Scheme{}, nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(timeout))
	if err != nil {
		nc.Close()
		return subjects.Scheme{}, nil, nil, err
	}
	return scheme, nc, js, nil
}

// connectTool connects a one-shot command (emit, dlq) to the configured
// servers, or to the embedded server of a worker running on this machine
// when no URL is configured. It does not retry: the command reports the
// failure at once.
func connectTool(cfg config.NATS, name string) (*nats.Conn, error) {
	url := cfg.URL
	if url == "" {
		url = "nats://" + cfg.Embedded.Listen
	}
	opts, err := natsconn.Options(connectConfig(cfg, url, name), natsconn.Events{})
	if err != nil {
		return nil, &usageError{err}
	}
	opts = append(opts, nats.RetryOnFailedConnect(false), nats.MaxReconnects(0))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}
