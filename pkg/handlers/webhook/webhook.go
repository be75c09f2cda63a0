package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/triggerbus/triggerbus/internal/netguard"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// ErrPrivateNetwork is wrapped by the error of a webhook that refuses a
// non-public address because of [Config.DenyPrivateNetworks].
var ErrPrivateNetwork = netguard.ErrNonPublic

// Defaults of [Config].
const (
	defaultTimeout = 10 * time.Second
	defaultMaxBody = 1 << 20
	// errorBodyBytes is how much of a non-2xx body an [HTTPError] keeps.
	errorBodyBytes = 512
)

// Config configures a [Handler]. Zero fields, except URL, take their
// defaults. Its LogValue and String methods never show the secret.
type Config struct {
	// URL is the http or https URL each event is POSTed to.
	URL string
	// Secret signs every request per Standard Webhooks: "whsec_" followed by
	// the base64 of the key, or else the key itself. Empty: requests are not
	// signed. It is never logged and never part of an error.
	Secret string
	// Timeout bounds each call, from connecting to reading the whole
	// response; 0 means 10s. A shorter deadline of the call's context wins.
	Timeout time.Duration
	// Headers are added to every request. They cannot set the headers the
	// webhook sets itself (Content-Type, User-Agent, Trigger-Origin, the
	// webhook-* signature headers) or the connection-level ones (Host,
	// Content-Length, Transfer-Encoding, Connection). Their values are not
	// logged, since they often hold tokens.
	Headers map[string]string
	// CA is a PEM file of root CAs trusted in addition to the system's. TLS
	// certificates are always verified, and TLS 1.2 is the oldest version
	// spoken.
	CA string
	// MaxBodyBytes caps the response body; 0 means 1 MiB. A larger body is an
	// error.
	MaxBodyBytes int64
	// DenyPrivateNetworks refuses to connect to addresses that are not public:
	// loopback, private, link-local, unspecified, multicast, shared (CGNAT)
	// and reserved ranges. The check is made on the address actually dialled,
	// after name resolution, so a name that resolves to such an address is
	// refused too. An IP literal URL of that kind is refused by [New].
	DenyPrivateNetworks bool
	// Format is how the event is sent: [FormatJSON] (the event as the JSON
	// body) or [FormatCloudEvents] (a binary-mode CloudEvent, see there);
	// "" means FormatJSON. A reply that is a CloudEvent is read as one in
	// either format (see [Handler.Handle]).
	Format string
	// Prefix is the subject prefix the CloudEvents type starts with
	// (<prefix>.<TYPE>.<OPTION>, the event's subject); "" means
	// subjects.DefaultPrefix.
	Prefix string
}

// setDefaults fills the zero fields.
func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.Prefix == "" {
		c.Prefix = subjects.DefaultPrefix
	}
}

// reserved are the headers a config cannot set, in canonical form.
var reserved = map[string]bool{
	"Content-Type":      true,
	"User-Agent":        true,
	"Trigger-Origin":    true,
	"Webhook-Id":        true,
	"Webhook-Timestamp": true,
	"Webhook-Signature": true,
	"Host":              true,
	"Content-Length":    true,
	"Transfer-Encoding": true,
	"Connection":        true,
}

// Validate reports whether c is a valid config, with an error wrapping
// [handlers.ErrInvalidConfig] that says why. It does no I/O: whether the CA
// file can be read is checked by [New].
func (c Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("%w: webhook url is empty", handlers.ErrInvalidConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// The url.Error holds the whole URL, with any password in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: webhook url: %w", handlers.ErrInvalidConfig, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: webhook url %s: scheme must be http or https", handlers.ErrInvalidConfig, netguard.RedactURL(c.URL))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: webhook url %s has no host", handlers.ErrInvalidConfig, netguard.RedactURL(c.URL))
	}
	if c.DenyPrivateNetworks {
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
			if why := netguard.NonPublic(addr); why != "" {
				return fmt.Errorf("%w: webhook url: %w: %s is a %s address and DenyPrivateNetworks is set",
					handlers.ErrInvalidConfig, ErrPrivateNetwork, addr, why)
			}
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: webhook timeout %v is negative", handlers.ErrInvalidConfig, c.Timeout)
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: webhook max body bytes %d is negative", handlers.ErrInvalidConfig, c.MaxBodyBytes)
	}
	if _, err := signingKey(c.Secret); err != nil {
		return err
	}
	if err := c.validFormat(); err != nil {
		return err
	}
	for name, value := range c.Headers {
		if !netguard.ValidHeaderName(name) {
			return fmt.Errorf("%w: webhook header name %q is not a valid HTTP header name", handlers.ErrInvalidConfig, name)
		}
		if reserved[http.CanonicalHeaderKey(name)] {
			return fmt.Errorf("%w: webhook header %q is set by the webhook itself", handlers.ErrInvalidConfig, name)
		}
		if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return fmt.Errorf("%w: webhook header %q has a control character in its value", handlers.ErrInvalidConfig, name)
		}
	}
	return nil
}

// LogValue shows the config without its secrets: the secret, the header
// values, any password and the query of the URL print as REDACTED.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", netguard.RedactURL(c.URL))}
	if c.Secret != "" {
		attrs = append(attrs, slog.String("secret", "REDACTED"))
	}
	if len(c.Headers) > 0 {
		hs := make([]any, 0, len(c.Headers))
		for name := range c.Headers {
			hs = append(hs, slog.String(name, "REDACTED"))
		}
		attrs = append(attrs, slog.Group("headers", hs...))
	}
	if c.Timeout != 0 {
		attrs = append(attrs, slog.Duration("timeout", c.Timeout))
	}
	if c.CA != "" {
		attrs = append(attrs, slog.String("ca", c.CA))
	}
	if c.MaxBodyBytes != 0 {
		attrs = append(attrs, slog.Int64("max_body_bytes", c.MaxBodyBytes))
	}
	attrs = append(attrs, slog.Bool("deny_private_networks", c.DenyPrivateNetworks))
	if c.Format != "" {
		attrs = append(attrs, slog.String("format", c.Format))
	}
	return slog.GroupValue(attrs...)
}

// String shows the config as LogValue does, so that printing it with fmt
// does not show the secret either.
func (c Config) String() string { return "WebhookConfig" + c.LogValue().String() }

// GoString is String, for the %#v verb.
func (c Config) GoString() string { return c.String() }

// signingKey returns the signing key of secret; nil when secret is empty.
func signingKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		// Neither the secret nor the decoder's error (which points into
		// it) goes into the message.
		return nil, fmt.Errorf("%w: webhook secret starts with whsec_ but the rest is not a non-empty standard base64 string", handlers.ErrInvalidConfig)
	}
	return key, nil
}

// Handler is the webhook handler kind: it POSTs each event to a URL and reads
// the function's result from the response. It owns an HTTP client with its own
// connection pool, which Close releases. A Handler is safe for concurrent use.
type Handler struct {
	url       string
	timeout   time.Duration
	maxBody   int64
	key       []byte
	format    string
	prefix    string // the subject prefix, for the CloudEvents type
	header    http.Header
	transport *http.Transport
	client    *http.Client
	closed    atomic.Bool
}

var (
	_ handlers.Handler   = (*Handler)(nil)
	_ handlers.WaitsOnIO = (*Handler)(nil)
)

// WaitsOnIO is true: a call waits on an HTTP request.
func (h *Handler) WaitsOnIO() bool { return true }

// New returns a webhook for cfg. The only I/O it does is reading the CA
// file; errors about the config wrap [handlers.ErrInvalidConfig].
func New(cfg Config) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := signingKey(cfg.Secret)
	if err != nil {
		return nil, err
	}
	roots, err := roots(cfg.CA)
	if err != nil {
		return nil, err
	}
	header := make(http.Header, len(cfg.Headers)+3)
	header.Set("Accept", "application/json")
	for name, value := range cfg.Headers {
		header.Set(name, value)
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", "triggerbus")

	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	if cfg.DenyPrivateNetworks {
		dialer.Control = netguard.Control
	}
	transport := &http.Transport{
		// No proxy: a proxy from the environment would both surprise and
		// get around DenyPrivateNetworks.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    roots,
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Handler{
		url:       cfg.URL,
		timeout:   cfg.Timeout,
		maxBody:   cfg.MaxBodyBytes,
		key:       key,
		format:    cfg.Format,
		prefix:    cfg.Prefix,
		header:    header,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// roots returns the system roots plus those of the PEM file ca; nil
// (the system roots) when ca is empty.
func roots(ca string) (*x509.CertPool, error) {
	if ca == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook ca: %w", handlers.ErrInvalidConfig, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: webhook ca %s holds no PEM certificate", handlers.ErrInvalidConfig, ca)
	}
	return pool, nil
}

// String names the webhook by its URL, without password or query.
func (w *Handler) String() string { return "webhook " + netguard.RedactURL(w.url) }

// GoString is String, for the %#v verb: the signing key is not shown.
func (w *Handler) GoString() string { return w.String() }

// Handle POSTs the event and maps the response to a result: a 2xx response
// with a JSON body is parsed with [handlers.ParseResult], an empty body (or
// 204) is CONTINUE. A 2xx response that is a CloudEvent (a Ce-Specversion
// header, or Content-Type application/cloudevents+json) has its data parsed
// so; a reply that is not a valid CloudEvent, or whose data is not JSON, is
// an error wrapping [handlers.ErrBadResult]. Any other status, a redirect included, is an
// *[HTTPError]; a body larger than the cap is an error; running out of time
// is an error wrapping [handlers.ErrTimeout] and [context.DeadlineExceeded].
func (w *Handler) Handle(ctx context.Context, ev *event.Event) (handlers.Result, error) {
	if w.closed.Load() {
		return handlers.Result{}, errors.New("handlers: webhook is closed")
	}
	if ev == nil {
		return handlers.Result{}, errors.New("handlers: webhook: nil event")
	}
	body, err := ev.Encode()
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: webhook: encode event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: webhook: %w", err)
	}
	req.Header = w.header.Clone()
	origin, ok := event.OriginFrom(ctx)
	if !ok {
		if c, _ := handlers.CallFrom(ctx); c.Origin != "" {
			origin, ok = c.Origin, true
		}
	}
	if ok {
		req.Header.Set("Trigger-Origin", origin)
	}
	if w.format == FormatCloudEvents {
		if err := w.setCloudEvent(ctx, req, ev, body); err != nil {
			return handlers.Result{}, err
		}
	}
	injectTrace(ctx, req.Header)
	if w.key != nil {
		id := ev.ID
		if id == "" {
			id = event.NewID()
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", ts)
		req.Header.Set("Webhook-Signature", sign(w.key, id, ts, body))
	}

	resp, err := w.client.Do(req)
	if err != nil {
		return handlers.Result{}, callError(ctx, err)
	}
	defer func() {
		resp.Body.Close()
		if w.closed.Load() {
			// The connection went back to the pool after Close emptied it.
			w.transport.CloseIdleConnections()
		}
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
		// Read a little more so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return handlers.Result{}, &HTTPError{StatusCode: resp.StatusCode, Body: strings.ToValidUTF8(string(head), "\uFFFD")}
	}
	if resp.StatusCode == http.StatusNoContent {
		return handlers.Result{ExitState: handlers.Continue}, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, min(w.maxBody, math.MaxInt64-1)+1))
	if err != nil {
		return handlers.Result{}, callError(ctx, fmt.Errorf("read response: %w", err))
	}
	if int64(len(data)) > w.maxBody {
		return handlers.Result{}, fmt.Errorf("handlers: webhook response body is larger than %d bytes", w.maxBody)
	}
	parse := handlers.ParseResult
	if isCloudEventReply(resp.Header) {
		parse = func(data []byte) (handlers.Result, error) { return cloudEventResult(ctx, resp.Header, data) }
	}
	res, err := parse(data)
	if err != nil {
		return handlers.Result{}, fmt.Errorf("handlers: webhook response: %w", err)
	}
	return res, nil
}

// sign returns the Standard Webhooks signature header value: "v1,"
// and the base64 of HMAC-SHA256(key, id "." timestamp "." body).
func sign(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// callError wraps err, the failure of a call under ctx, so that a
// timeout wraps ErrTimeout and context.DeadlineExceeded and a cancellation
// wraps context.Canceled.
func callError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// The client already hides the password; hide the query too.
		ue.URL = netguard.RedactURL(ue.URL)
	}
	cause := ctx.Err()
	switch {
	case handlers.IsTimeout(cause) && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: webhook: %w", handlers.ErrTimeout, err)
	case handlers.IsTimeout(cause):
		return fmt.Errorf("%w: webhook: %w: %w", handlers.ErrTimeout, cause, err)
	case cause != nil && !errors.Is(err, cause):
		return fmt.Errorf("handlers: webhook: %w: %w", cause, err)
	}
	return fmt.Errorf("handlers: webhook: %w", err)
}

// Close releases the webhook's idle connections. Calls made after Close
// fail. Close is idempotent and always returns nil.
func (w *Handler) Close() error {
	w.closed.Store(true)
	w.transport.CloseIdleConnections()
	return nil
}

// HTTPError is the error of a webhook that answered with a status other than
// 2xx. Redirects are not followed, so a 3xx is an HTTPError too.
type HTTPError struct {
	StatusCode int
	// Body is the start of the response body: at most 512 bytes.
	Body string
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "handlers: webhook answered HTTP %d", e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" " + text)
	}
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		b.WriteString(" (redirects are not followed)")
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}
