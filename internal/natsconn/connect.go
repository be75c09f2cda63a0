package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultName is the connection name when [Config.Name] is "".
const DefaultName = "trigger-worker"

// Config says how to reach NATS. Zero values mean no such setting.
type Config struct {
	// URL is one server URL or a comma-separated list.
	URL string
	// Name is the connection name servers show; "" means [DefaultName].
	Name string
	// Creds is a credentials file (JWT and nkey seed).
	Creds string
	// NKey is an nkey seed file.
	NKey string
	// User and Password authenticate with a user name.
	User, Password string
	// Token authenticates with a token.
	Token string
	// TLSCA, TLSCert, TLSKey: the CA that signs the servers' certificates and
	// the client certificate and key.
	TLSCA, TLSCert, TLSKey string
}

// Events says where the connection's state changes go. nats.go reports them
// from one goroutine it owns, in order. Every field may be nil.
type Events struct {
	// Logger logs connects, disconnects and errors; nil discards them.
	Logger *slog.Logger
	// Connected is set to 1 while connected, 0 otherwise (a worker passes
	// its trigger_nats_connected gauge).
	Connected prometheus.Gauge
	// SlowConsumers counts the times NATS dropped messages for a
	// subscription that fell behind (trigger_slow_consumers_total).
	SlowConsumers prometheus.Counter
}

func (ev Events) setConnected(v float64) {
	if ev.Connected != nil {
		ev.Connected.Set(v)
	}
}

// Options returns the nats.go options for cfg: reconnect forever, with the
// state changes logged and reflected in ev's metrics.
func Options(cfg Config, ev Events) ([]nats.Option, error) {
	log := ev.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats")
	name := cfg.Name
	if name == "" {
		name = DefaultName
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
			ev.setConnected(0)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			ev.setConnected(1)
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
			ev.setConnected(1)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("NATS connection closed")
			ev.setConnected(0)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				if ev.SlowConsumers != nil {
					ev.SlowConsumers.Inc()
				}
				log.Error("slow consumer: NATS dropped messages for a subscription that fell behind", "subject", subject)
				return
			}
			log.Error("NATS error", "subject", subject, "err", err)
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("natsconn: nkey seed %s: %w", cfg.NKey, err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("natsconn: TLS client certificate and key go together")
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}
