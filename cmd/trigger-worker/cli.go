package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// hintError is a usage error with the one line that says where the usage
// is ("Run 'trigger-worker dlq ls --help' for usage.").
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// report prints err as main does: the error, then for bad usage the line
// that says where the usage is.
func report(w io.Writer, err error) {
	if !errors.Is(err, errQuiet) {
		fmt.Fprintln(w, "trigger-worker:", err)
	}
	var he *hintError
	if errors.As(err, &he) {
		fmt.Fprintln(w, he.hint)
	}
}

// overrideFlags are the flags that set a config key, each declared only on
// the commands that use the key.
var overrideFlags = []struct{ name, key, help string }{
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

// natsFlags are the connection flags, named as the nats CLI names them,
// and the keys they set.
var natsFlags = []struct{ name, short, key, help string }{
	{"server", "s", "nats.url", "NATS server URL(s), comma-separated (default $NATS_URL, else the config's nats.url; none: the embedded server)"},
	{"creds", "", "nats.creds", "NATS credentials file (JWT and nkey seed)"},
	{"nkey", "", "nats.nkey", "NATS nkey seed file"},
	{"tlsca", "", "nats.tls.ca", "file of CA certificates to trust for the NATS server"},
	{"tlscert", "", "nats.tls.cert", "client certificate for NATS (with --tlskey)"},
	{"tlskey", "", "nats.tls.key", "client key for NATS (with --tlscert)"},
}

// natsAliases are the former names of connection flags: accepted, hidden.
var natsAliases = map[string]string{"nats-url": "server", "nats-creds": "creds"}

// commonFlags are the flags of a command that reads the configuration: the
// config file, the overrides of the keys the command uses, and with
// connect the NATS connection flags.
type commonFlags struct {
	fs          *pflag.FlagSet
	configPath  string
	natsContext string
	keys        map[string]string // flag name -> key
}

// addCommonFlags declares on cmd the config file flag, the override flags
// named (by flag name, "all" for every one) and, with connect, the
// connection flags.
func addCommonFlags(cmd *cobra.Command, connect bool, names ...string) *commonFlags {
	c := &commonFlags{fs: cmd.Flags(), keys: map[string]string{}}
	c.fs.StringVarP(&c.configPath, "config", "c", "", "config file (default "+config.DefaultPath+" if present)")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	for _, f := range overrideFlags {
		if slices.Contains(names, "all") || slices.Contains(names, f.name) {
			c.fs.String(f.name, "", f.help+" (config "+f.key+")")
			c.keys[f.name] = f.key
		}
	}
	if !connect {
		return c
	}
	for _, f := range natsFlags {
		c.fs.StringP(f.name, f.short, "", f.help)
		c.keys[f.name] = f.key
	}
	for alias, name := range natsAliases {
		c.fs.String(alias, "", "same as --"+name)
		_ = c.fs.MarkHidden(alias)
		c.keys[alias] = c.keys[name]
	}
	c.fs.StringVar(&c.natsContext, "context", os.Getenv("NATS_CONTEXT"), "nats CLI context to connect with (nats context save; default $NATS_CONTEXT)")
	_ = cmd.RegisterFlagCompletionFunc("context", completeContexts)
	return c
}

// completeContexts completes --context with the saved nats CLI contexts.
func completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	dir, err := natsconn.ContextDir()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// load reads the configuration the flags name. A key's value comes, first
// found, from: its flag (--server, --creds, --prefix, ...), its TRIGGER_*
// variable, NATS_URL (nats.url only), the --context (the nats.* keys it
// has), the config file, the defaults.
func (c *commonFlags) load() (config.Config, error) {
	path := c.configPath
	if path == "" {
		path = config.FindDefault()
	} else if _, err := os.Stat(path); err != nil {
		return config.Config{}, usagef("config file: %w", err)
	}
	var binds []config.FlagBinding
	set := map[string]bool{} // keys set by a flag
	for name, key := range c.keys {
		if f := c.fs.Lookup(name); f != nil && f.Changed {
			binds = append(binds, config.FlagBinding{Key: key, Flag: f})
			set[key] = true
		}
	}
	slices.SortFunc(binds, func(a, b config.FlagBinding) int { return strings.Compare(a.Flag.Name, b.Flag.Name) })
	ov := map[string]any{}
	// below sets key from a source below its flag and its TRIGGER_* variable;
	// a later call wins.
	below := func(key, value string) {
		env := "TRIGGER_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if value != "" && !set[key] && os.Getenv(env) == "" {
			ov[key] = value
		}
	}
	if c.natsContext != "" {
		nc, err := natsconn.LoadContext(c.natsContext)
		if err != nil {
			return config.Config{}, &usageError{err: err}
		}
		below("nats.url", nc.URL)
		below("nats.creds", nc.Creds)
		below("nats.nkey", nc.NKey)
		below("nats.user", nc.User)
		below("nats.password", nc.Password)
		below("nats.token", nc.Token)
		below("nats.tls.ca", nc.CA)
		below("nats.tls.cert", nc.Cert)
		below("nats.tls.key", nc.Key)
	}
	if _, connects := c.keys["server"]; connects {
		below("nats.url", os.Getenv("NATS_URL"))
	}
	cfg, err := config.Load(path, ov, binds...)
	if err != nil {
		return cfg, &usageError{err: err}
	}
	return cfg, nil
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
		return subjects.Scheme{}, nil, nil, &usageError{err: err}
	}
	nc, err := connectTool(cfg.NATS, name)
	if err != nil {
		return subjects.Scheme{}, nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(timeout), jetstream.WithPublishAsyncTimeout(timeout))
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
		return nil, &usageError{err: err}
	}
	opts = append(opts, nats.RetryOnFailedConnect(false), nats.MaxReconnects(0))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}
