package handlers

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
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
)

// ErrInvalidConfig is wrapped by the errors of the handler constructors when
// their config is not valid.
var ErrInvalidConfig = errors.New("handlers: invalid config")

// ErrPrivateNetwork is wrapped by the error of a webhook that refuses a
// non-public address because of [WebhookConfig.DenyPrivateNetworks].
var ErrPrivateNetwork = errors.New("handlers: webhook address is not public")

// Defaults of [WebhookConfig].
const (
	webhookDefaultTimeout = 10 * time.Second
	webhookDefaultMaxBody = 1 << 20
	// webhookErrorBodyBytes is how much of a non-2xx body an [HTTPError] keeps.
	webhookErrorBodyBytes = 512
)

// WebhookConfig configures a [Webhook]. Zero fields, except URL, take their
// defaults. Its LogValue and String methods never show the secret.
type WebhookConfig struct {
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
	// refused too. An IP literal URL of that kind is refused by [NewWebhook].
	DenyPrivateNetworks bool
}

// setDefaults fills the zero fields.
func (c *WebhookConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = webhookDefaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = webhookDefaultMaxBody
	}
}

// webhookReserved are the headers a config cannot set, in canonical form.
var webhookReserved = map[string]bool{
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
// [ErrInvalidConfig] that says why. It does no I/O: whether the CA file can be
// read is checked by [NewWebhook].
func (c WebhookConfig) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("%w: webhook url is empty", ErrInvalidConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// The url.Error holds the whole URL, with any password in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: webhook url: %w", ErrInvalidConfig, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: webhook url %s: scheme must be http or https", ErrInvalidConfig, webhookRedactURL(c.URL))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: webhook url %s has no host", ErrInvalidConfig, webhookRedactURL(c.URL))
	}
	if c.DenyPrivateNetworks {
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
			if why := webhookNonPublic(addr); why != "" {
				return fmt.Errorf("%w: webhook url: %w: %s is a %s address and DenyPrivateNetworks is set",
					ErrInvalidConfig, ErrPrivateNetwork, addr, why)
			}
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: webhook timeout %v is negative", ErrInvalidConfig, c.Timeout)
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: webhook max body bytes %d is negative", ErrInvalidConfig, c.MaxBodyBytes)
	}
	if _, err := webhookKey(c.Secret); err != nil {
		return err
	}
	for name, value := range c.Headers {
		if !webhookValidHeaderName(name) {
			return fmt.Errorf("%w: webhook header name %q is not a valid HTTP header name", ErrInvalidConfig, name)
		}
		if webhookReserved[http.CanonicalHeaderKey(name)] {
			return fmt.Errorf("%w: webhook header %q is set by the webhook itself", ErrInvalidConfig, name)
		}
		if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return fmt.Errorf("%w: webhook header %q has a control character in its value", ErrInvalidConfig, name)
		}
	}
	return nil
}

// LogValue shows the config without its secrets: the secret, the header
// values, any password and the query of the URL print as REDACTED.
func (c WebhookConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", webhookRedactURL(c.URL))}
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
	return slog.GroupValue(attrs...)
}

// String shows the config as LogValue does, so that printing it with fmt
// does not show the secret either.
func (c WebhookConfig) String() string { return "WebhookConfig" + c.LogValue().String() }

// GoString is String, for the %#v verb.
func (c WebhookConfig) GoString() string { return c.String() }

// webhookRedactURL returns raw with any password and query replaced by REDACTED.
func webhookRedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "REDACTED (not a valid URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.Redacted()
}

// webhookKey returns the signing key of secret; nil when secret is empty.
func webhookKey(secret string) ([]byte, error) {
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
		return nil, fmt.Errorf("%w: webhook secret starts with whsec_ but the rest is not a non-empty standard base64 string", ErrInvalidConfig)
	}
	return key, nil
}

func webhookValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Webhook is the webhook handler kind: it POSTs each event to a URL and reads
// the function's result from the response. It owns an HTTP client with its own
// connection pool, which Close releases. A Webhook is safe for concurrent use.
type Webhook struct {
	url       string
	timeout   time.Duration
	maxBody   int64
	key       []byte
	header    http.Header
	transport *http.Transport
	client    *http.Client
	closed    atomic.Bool
}

var _ Handler = (*Webhook)(nil)

// NewWebhook returns a webhook for cfg. The only I/O it does is reading the CA
// file; errors about the config wrap [ErrInvalidConfig].
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := webhookKey(cfg.Secret)
	if err != nil {
		return nil, err
	}
	roots, err := webhookRoots(cfg.CA)
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
		dialer.Control = webhookDialControl
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
	return &Webhook{
		url:       cfg.URL,
		timeout:   cfg.Timeout,
		maxBody:   cfg.MaxBodyBytes,
		key:       key,
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

// webhookRoots returns the system roots plus those of the PEM file ca; nil
// (the system roots) when ca is empty.
func webhookRoots(ca string) (*x509.CertPool, error) {
	if ca == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook ca: %w", ErrInvalidConfig, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: webhook ca %s holds no PEM certificate", ErrInvalidConfig, ca)
	}
	return pool, nil
}

// String names the webhook by its URL, without password or query.
func (w *Webhook) String() string { return "webhook " + webhookRedactURL(w.url) }

// GoString is String, for the %#v verb: the signing key is not shown.
func (w *Webhook) GoString() string { return w.String() }

// Handle POSTs the event and maps the response to a result: a 2xx response
// with a JSON body is parsed with [ParseResult], an empty body (or 204) is
// CONTINUE. Any other status, a redirect included, is an *[HTTPError]; a
// body larger than the cap is an error; running out of time is an error
// wrapping [ErrTimeout] and [context.DeadlineExceeded].
func (w *Webhook) Handle(ctx context.Context, ev *event.Event) (Result, error) {
	if w.closed.Load() {
		return Result{}, errors.New("handlers: webhook is closed")
	}
	if ev == nil {
		return Result{}, errors.New("handlers: webhook: nil event")
	}
	body, err := ev.Encode()
	if err != nil {
		return Result{}, fmt.Errorf("handlers: webhook: encode event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("handlers: webhook: %w", err)
	}
	req.Header = w.header.Clone()
	origin, ok := event.OriginFrom(ctx)
	if !ok {
		if c, _ := CallFrom(ctx); c.Origin != "" {
			origin, ok = c.Origin, true
		}
	}
	if ok {
		req.Header.Set("Trigger-Origin", origin)
	}
	if w.key != nil {
		id := ev.ID
		if id == "" {
			id = event.NewID()
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", ts)
		req.Header.Set("Webhook-Signature", webhookSign(w.key, id, ts, body))
	}

	resp, err := w.client.Do(req)
	if err != nil {
		return Result{}, webhookCallError(ctx, err)
	}
	defer func() {
		resp.Body.Close()
		if w.closed.Load() {
			// The connection went back to the pool after Close emptied it.
			w.transport.CloseIdleConnections()
		}
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, webhookErrorBodyBytes))
		// Read a little more so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return Result{}, &HTTPError{StatusCode: resp.StatusCode, Body: strings.ToValidUTF8(string(head), "\uFFFD")}
	}
	if resp.StatusCode == http.StatusNoContent {
		return Result{ExitState: Continue}, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, capPlusOne(w.maxBody)))
	if err != nil {
		return Result{}, webhookCallError(ctx, fmt.Errorf("read response: %w", err))
	}
	if int64(len(data)) > w.maxBody {
		return Result{}, fmt.Errorf("handlers: webhook response body is larger than %d bytes", w.maxBody)
	}
	res, err := ParseResult(data)
	if err != nil {
		return Result{}, fmt.Errorf("handlers: webhook response: %w", err)
	}
	return res, nil
}

// webhookSign returns the Standard Webhooks signature header value: "v1,"
// and the base64 of HMAC-SHA256(key, id "." timestamp "." body).
func webhookSign(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// webhookCallError wraps err, the failure of a call under ctx, so that a
// timeout wraps ErrTimeout and context.DeadlineExceeded and a cancellation
// wraps context.Canceled.
func webhookCallError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// The client already hides the password; hide the query too.
		ue.URL = webhookRedactURL(ue.URL)
	}
	cause := ctx.Err()
	switch {
	case IsTimeout(cause) && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: webhook: %w", ErrTimeout, err)
	case IsTimeout(cause):
		return fmt.Errorf("%w: webhook: %w: %w", ErrTimeout, cause, err)
	case cause != nil && !errors.Is(err, cause):
		return fmt.Errorf("handlers: webhook: %w: %w", cause, err)
	}
	return fmt.Errorf("handlers: webhook: %w", err)
}

// Close releases the webhook's idle connections. Calls made after Close
// fail. Close is idempotent and always returns nil.
func (w *Webhook) Close() error {
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

// webhookDialControl refuses to connect to a non-public address. It runs
// after name resolution, for each address dialled.
func webhookDialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check address %q", ErrPrivateNetwork, address)
	}
	if why := webhookNonPublic(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is a %s address and DenyPrivateNetworks is set", ErrPrivateNetwork, ap.Addr(), why)
	}
	return nil
}

// webhookSpecial lists the non-public ranges the netip predicates do not
// cover: IANA's special-purpose address registries, less the ranges marked
// globally reachable there.
var webhookSpecial = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHID"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

var (
	webhookNAT64 = netip.MustParsePrefix("64:ff9b::/96")
	webhook6to4  = netip.MustParsePrefix("2002::/16")
)

// webhookNonPublic returns what kind of non-public address a is, or "" when a
// is public. IPv4 addresses carried in IPv6 ones (mapped ::ffff:0:0/96, NAT64
// 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address; the other
// IPv6 forms that carry one (IPv4-compatible, IPv4-translated, Teredo,
// local-use NAT64) are refused whatever it is.
func webhookNonPublic(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	b := a.As16()
	switch {
	case webhookNAT64.Contains(a):
		return webhookNonPublic(netip.AddrFrom4([4]byte(b[12:16])))
	case webhook6to4.Contains(a):
		return webhookNonPublic(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, s := range webhookSpecial {
		if s.prefix.Contains(a) {
			return s.why
		}
	}
	return ""
}
