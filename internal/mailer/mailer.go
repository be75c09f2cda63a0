package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/time/rate"
)

// TLS modes of [Config.TLS].
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which the relay must offer
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS)
	TLSNone     = "none"     // no encryption
)

// Defaults of [Config].
const (
	DefaultRatePerMinute = 60
	DefaultTimeout       = 30 * time.Second
	// MaxRecipients bounds the recipients of one message (to, cc and bcc).
	MaxRecipients = 50
)

var (
	// ErrInvalidConfig is wrapped by the errors of [New].
	ErrInvalidConfig = errors.New("mailer: invalid config")
	// ErrRateLimited is returned by [Mailer.Send] when the rate limit has
	// no message left; the message is not sent.
	ErrRateLimited = errors.New("mailer: rate limit reached")
	// ErrBadMessage is wrapped by the errors of a message [Mailer.Send]
	// refuses before connecting: no recipient, too many, a bad address.
	ErrBadMessage = errors.New("mailer: bad message")
)

// Config is an SMTP relay. The zero value of each field but Host and From
// takes its default.
type Config struct {
	// Host is the relay's host name. Required.
	Host string
	// Port is the relay's port; 0 means 587 with STARTTLS, 465 with TLS, 25
	// without.
	Port int
	// TLS is TLSStartTLS (the default when ""), TLSImplicit or TLSNone.
	TLS string
	// CA is a PEM file of the certificates to trust instead of the
	// system's; "" uses the system's.
	CA string
	// Username and Password authenticate (PLAIN, or LOGIN when the relay
	// offers only that) when Username is set.
	Username, Password string
	// From is the sender of every message: its From header and envelope
	// sender. Required.
	From string
	// RatePerMinute is how many messages the Mailer sends a minute, in
	// bursts of up to that many; 0 means 60.
	RatePerMinute int
	// Timeout bounds one message, from connecting to the end of the
	// transaction; 0 means 30s. A sooner deadline of Send's ctx wins.
	Timeout time.Duration
}

// Message is a plain-text message.
type Message struct {
	To, Cc, Bcc []string
	// ReplyTo is the Reply-To address; "" for none.
	ReplyTo string
	Subject string
	Body    string
}

// Mailer sends messages through one relay. It is safe for concurrent use;
// it keeps no connection between messages, and so needs no Close.
type Mailer struct {
	cfg     Config
	tls     *tls.Config
	limiter *rate.Limiter
}

// New checks cfg and returns its Mailer. It reads cfg.CA but does no
// network I/O.
func New(cfg Config) (*Mailer, error) {
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Port == 0 {
		cfg.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[cfg.TLS]
	}
	if cfg.RatePerMinute == 0 {
		cfg.RatePerMinute = DefaultRatePerMinute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Host == "":
		return nil, fmt.Errorf("%w: host is empty", ErrInvalidConfig)
	case cfg.TLS != TLSStartTLS && cfg.TLS != TLSImplicit && cfg.TLS != TLSNone:
		return nil, fmt.Errorf("%w: tls %q is not one of starttls, tls, none", ErrInvalidConfig, cfg.TLS)
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("%w: port %d is not 1 to 65535", ErrInvalidConfig, cfg.Port)
	case cfg.RatePerMinute < 0:
		return nil, fmt.Errorf("%w: rate per minute %d is negative", ErrInvalidConfig, cfg.RatePerMinute)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: timeout %v is negative", ErrInvalidConfig, cfg.Timeout)
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("%w: from %q: %w", ErrInvalidConfig, cfg.From, err)
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %w", ErrInvalidConfig, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca %s has no PEM certificate", ErrInvalidConfig, cfg.CA)
		}
	}
	lim := rate.NewLimiter(rate.Limit(float64(cfg.RatePerMinute)/60), cfg.RatePerMinute)
	return &Mailer{cfg: cfg, tls: tc, limiter: lim}, nil
}

// Send sends m, from the configured sender. A message without recipient,
// with more than [MaxRecipients] or with a bad address is refused with
// [ErrBadMessage], one over the rate with [ErrRateLimited], both before
// connecting.
func (ml *Mailer) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(ml.cfg.From); err != nil {
		return fmt.Errorf("mailer: from: %w", err)
	}
	n := len(m.To) + len(m.Cc) + len(m.Bcc)
	switch {
	case n == 0:
		return fmt.Errorf("%w: no recipient", ErrBadMessage)
	case n > MaxRecipients:
		return fmt.Errorf("%w: %d recipients, at most %d", ErrBadMessage, n, MaxRecipients)
	}
	for _, set := range []struct {
		name  string
		addrs []string
		fn    func(...string) error
	}{{"to", m.To, msg.To}, {"cc", m.Cc, msg.Cc}, {"bcc", m.Bcc, msg.Bcc}} {
		if len(set.addrs) == 0 {
			continue
		}
		if err := set.fn(set.addrs...); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadMessage, set.name, err)
		}
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return fmt.Errorf("%w: reply-to: %w", ErrBadMessage, err)
		}
	}
	msg.Subject(strings.ToValidUTF8(m.Subject, "\uFFFD"))
	msg.SetBodyString(gomail.TypeTextPlain, strings.ToValidUTF8(m.Body, "\uFFFD"))
	msg.SetDate()
	msg.SetMessageID()

	if !ml.limiter.Allow() {
		return fmt.Errorf("%w: at most %d messages a minute", ErrRateLimited, ml.cfg.RatePerMinute)
	}
	opts := []gomail.Option{
		gomail.WithPort(ml.cfg.Port),
		gomail.WithTimeout(ml.cfg.Timeout),
		gomail.WithTLSConfig(ml.tls),
	}
	switch ml.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if ml.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(ml.cfg.Username), gomail.WithPassword(ml.cfg.Password))
	}
	c, err := gomail.NewClient(ml.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ml.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mailer: send through %s:%d: %w", ml.cfg.Host, ml.cfg.Port, err)
	}
	return nil
}
