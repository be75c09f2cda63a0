package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is the client address of an embedded server when
// [EmbeddedConfig.Listen] is "".
const DefaultListen = "127.0.0.1:4222"

// EmbeddedConfig configures the NATS server a worker starts when no URL is
// configured.
type EmbeddedConfig struct {
	// Listen is the client address; "" means [DefaultListen], and port 0 a
	// free port chosen at start (the server's Addr says which).
	Listen string
	// JetStream turns JetStream on, with its files in StoreDir.
	JetStream bool
	StoreDir  string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// StartEmbedded starts a NATS server in this process and waits until it
// takes connections. The caller shuts it down (Shutdown, then
// WaitForShutdown) after everything that uses it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("natsconn: embedded listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("natsconn: embedded listen port %q: %w", portText, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
	}
	opts := &server.Options{
		ServerName: "triggerbus-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		JetStream:  cfg.JetStream,
		StoreDir:   cfg.StoreDir,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsconn: embedded server: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(&serverLog{l: cfg.Logger.With("component", "nats-server")}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("natsconn: embedded server not ready after 10s (is the port free?)")
	}
	return ns, nil
}

// serverLog bridges the server's logs into slog.
type serverLog struct{ l *slog.Logger }

// Noticef is the server's chatter (banner, listen addresses): debug level;
// the worker logs its own line when the server is up.
func (s *serverLog) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLog) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLog) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
