package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectConfig says how to reach NATS. Zero values mean no such setting.
type ConnectConfig struct {
	// URL is one server URL or a comma-separated list.
	URL string
	// Name is the connection name servers show; "" means "trigger-worker".
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

// ConnectionEvents receives the connection's state changes. Its methods are
// called from one goroutine that nats.go owns, in order.
type ConnectionEvents struct {
	Logger  *slog.Logger
	Metrics *Metrics
}

// Options returns the nats.go options for cfg: reconnect forever, with the
// state changes logged and reflected in metrics.
func Options(cfg ConnectConfig, ev ConnectionEvents) ([]nats.Option, error) {
	log := ev.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats")
	name := cfg.Name
	if name == "" {
		name = "trigger-worker"
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
			if ev.Metrics != nil {
				ev.Metrics.NATSConnected.Set(0)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			if ev.Metrics != nil {
				ev.Metrics.NATSConnected.Set(1)
			}
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
			if ev.Metrics != nil {
				ev.Metrics.NATSConnected.Set(1)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("NATS connection closed")
			if ev.Metrics != nil {
				ev.Metrics.NATSConnected.Set(0)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				if ev.Metrics != nil {
					ev.Metrics.SlowConsumers.Inc()
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
			return nil, fmt.Errorf("worker: nkey seed %s: %w", cfg.NKey, err)
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
		return nil, errors.New("worker: TLS client certificate and key go together")
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}
