package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/triggerbus/triggerbus/pkg/schedule"
)

// Validate checks c and returns every problem found, joined, each an
// [*Error] naming the key (and c.File, when set). It checks structure only:
// that trigger types and options exist is for the worker to say
// (internal/matcher). A cron expression is read by package schedule.
func (c Config) Validate() error {
	p := &problems{file: c.File}
	c.NATS.validate(p)
	c.Subjects.validate(p)
	c.Delivery.validate(p)
	c.Scripts.validate(p)
	c.Email.validate(p)
	c.Metrics.validate(p)
	c.Log.validate(p)
	c.Loop.validate(p)
	c.Registry.validate(p)
	c.DecisionLog.validate(p)
	c.Archive.validate(p)
	c.Bundle.validate(p)
	c.Tracing.validate(p)
	c.GC.validate(p)
	validateFunctions(p, c.Functions)
	return errors.Join(p.errs...)
}

func (g GC) validate(p *problems) {
	if g.HeapFloorBytes < 0 {
		p.add("gc.heap_floor_bytes", "is %d, must not be negative (0 leaves the collector as Go sets it)", g.HeapFloorBytes)
	}
}

// problems collects validation errors.
type problems struct {
	file string
	ref  string // ref of the function being checked, if any
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Key: key, Ref: p.ref, Msg: fmt.Sprintf(format, args...)})
}

// oneOf checks that value is one of allowed.
func (p *problems) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		p.add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

// listen checks a host:port address.
func (p *problems) listen(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(key, "%q is not a host:port address", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "%q has an invalid port", addr)
	}
}

// subjectPrefix checks one or more NATS subject tokens joined by dots, with
// no wildcards.
func (p *problems) subjectPrefix(key, s string) {
	if s == "" {
		p.add(key, "is empty")
		return
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") || strings.ContainsFunc(tok, unicode.IsControl) {
			p.add(key, "%q is not a valid subject prefix (tokens separated by dots, no wildcards or spaces)", s)
			return
		}
	}
}

func (n NATS) validate(p *problems) {
	if strings.TrimSpace(n.URL) != "" {
		for i, raw := range strings.Split(n.URL, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				p.add("nats.url", "entry %d is empty", i+1)
				continue
			}
			if !strings.Contains(raw, "://") {
				// Not printed: it may hold a password.
				p.add("nats.url", "entry %d has no scheme (nats://, tls://, ws:// or wss://)", i+1)
				continue
			}
			u, err := url.Parse(raw)
			if err != nil {
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err // without the URL, which may hold a password
				}
				p.add("nats.url", "entry %d is not a URL: %v", i+1, err)
				continue
			}
			switch strings.ToLower(u.Scheme) {
			case "nats", "tls", "ws", "wss":
			default:
				p.add("nats.url", "%q: scheme must be nats, tls, ws or wss", u.Redacted())
				continue
			}
			if u.Host == "" {
				p.add("nats.url", "entry %d has no host", i+1)
			}
		}
	}
	if (n.TLS.Cert == "") != (n.TLS.Key == "") {
		if n.TLS.Cert == "" {
			p.add("nats.tls.cert", "is empty but nats.tls.key is set: set both or neither")
		} else {
			p.add("nats.tls.key", "is empty but nats.tls.cert is set: set both or neither")
		}
	}
	p.listen("nats.embedded.listen", n.Embedded.Listen)
}

func (s Subjects) validate(p *problems) {
	p.subjectPrefix("subjects.prefix", s.Prefix)
	if s.Queue == "" || strings.ContainsFunc(s.Queue, unicode.IsSpace) {
		p.add("subjects.queue", "%q is not a valid queue group name (non-empty, no spaces)", s.Queue)
	}
}

func (d Delivery) validate(p *problems) {
	p.oneOf("delivery.mode", d.Mode, DeliveryAuto, DeliveryCore, DeliveryDurable)
	if d.MaxDeliver < 1 && d.MaxDeliver != -1 {
		p.add("delivery.max_deliver", "is %d, must be at least 1 (or -1 for unlimited)", d.MaxDeliver)
	}
	for i, b := range d.Backoff {
		if b <= 0 {
			p.add(fmt.Sprintf("delivery.backoff[%d]", i), "is %v, must be positive", b)
		}
	}
	if d.AckWait <= 0 {
		p.add("delivery.ack_wait", "is %v, must be positive", d.AckWait)
	}
	if d.MaxInFlight < 1 {
		p.add("delivery.max_in_flight", "is %d, must be at least 1", d.MaxInFlight)
	}
	if d.MaxEventBytes < 1 {
		p.add("delivery.max_event_bytes", "is %d, must be at least 1", d.MaxEventBytes)
	}
	if d.ShutdownTimeout <= 0 {
		p.add("delivery.shutdown_timeout", "is %v, must be positive", d.ShutdownTimeout)
	}
	if d.StreamMaxAge < 0 {
		p.add("delivery.stream_max_age", "is %v, must be positive (or 0 for unlimited)", d.StreamMaxAge)
	}
	p.oneOf("delivery.stream_discard", d.StreamDiscard, StreamDiscardNew, StreamDiscardOld)
	if d.StreamMaxBytes < 1 && d.StreamMaxBytes != -1 {
		p.add("delivery.stream_max_bytes", "is %d, must be positive (or -1 for unlimited)", d.StreamMaxBytes)
	}
	if d.Replicas < 1 || d.Replicas > 5 {
		p.add("delivery.replicas", "is %d, must be 1 to 5", d.Replicas)
	}
	if d.DuplicateWindow < 0 {
		p.add("delivery.duplicate_window", "is %v, must not be negative", d.DuplicateWindow)
	}
}

func (s Scripts) validate(p *problems) {
	p.subjectPrefix("scripts.api_prefix", s.APIPrefix)
	if s.MaxMemoryBytes < 0 {
		p.add("scripts.max_memory_bytes", "is %d, must not be negative", s.MaxMemoryBytes)
	}
	if s.DataStoreMaxBytes < 1 {
		p.add("scripts.data_store_max_bytes", "is %d, must be positive", s.DataStoreMaxBytes)
	}
	seen := map[string]bool{}
	for i, m := range s.Messages {
		key := fmt.Sprintf("scripts.messages[%d].key", i)
		switch {
		case m.Key == "":
			p.add(key, "is empty")
		case seen[m.Key]:
			p.add(key, "%q is in the catalogue twice", m.Key)
		}
		seen[m.Key] = true
	}
}

func (e Email) validate(p *problems) {
	p.oneOf("email.tls", e.TLS, "starttls", "tls", "none")
	if e.Port < 0 || e.Port > 65535 {
		p.add("email.port", "is %d, must be 1 to 65535 (or 0 for the TLS mode's port)", e.Port)
	}
	if e.RatePerMinute < 1 {
		p.add("email.rate_per_minute", "is %d, must be positive", e.RatePerMinute)
	}
	if e.Timeout <= 0 {
		p.add("email.timeout", "is %v, must be positive", e.Timeout)
	}
	if e.Host == "" {
		return
	}
	if e.From == "" {
		p.add("email.from", "is empty, and email.host is set: give the sender of scripts' mail")
	} else if _, err := mail.ParseAddress(e.From); err != nil {
		p.add("email.from", "%q is not an address: %v", e.From, err)
	}
	if e.Password != "" && e.Username == "" {
		p.add("email.username", "is empty, and email.password is set")
	}
}

func (m Metrics) validate(p *problems) {
	if m.Enabled() {
		p.listen("metrics.listen", m.Listen)
	}
}

func (l Log) validate(p *problems) {
	p.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", l.Format, "text", "json")
}

// MaxLoopTTL is the longest loop.ttl (worker.MaxOriginTTL): a signed
// Trigger-Origin read off the bus can be replayed for that long.
const MaxLoopTTL = time.Hour

func (l Loop) validate(p *problems) {
	if l.TTL > MaxLoopTTL {
		p.add("loop.ttl", "is %v, more than the maximum of %v (a leaked Trigger-Origin would stay valid that long)", l.TTL, MaxLoopTTL)
	}
	if l.TTL <= 0 {
		p.add("loop.ttl", "is %v, must be positive", l.TTL)
	}
}

func (r Registry) validate(p *problems) {
	if r.Refresh <= 0 {
		p.add("registry.refresh", "is %v, must be positive", r.Refresh)
	}
}

func (d DecisionLog) validate(p *problems) {
	p.oneOf("decision_log.input", d.Input, DecisionInputNone, DecisionInputHash, DecisionInputFull)
	if d.SampleAllowed < 0 || d.SampleAllowed > 1 {
		p.add("decision_log.sample_allowed", "is %v, must be 0 to 1", d.SampleAllowed)
	}
	if d.MaxAge <= 0 {
		p.add("decision_log.max_age", "is %v, must be positive", d.MaxAge)
	}
	if d.MaxBytes == 0 || d.MaxBytes < -1 {
		p.add("decision_log.max_bytes", "is %d, must be positive or -1 (unlimited)", d.MaxBytes)
	}
}

func (a Archive) validate(p *problems) {
	if a.MaxAge < 0 {
		p.add("archive.max_age", "is %v, must be positive (or 0 for unlimited)", a.MaxAge)
	}
	if a.MaxBytes == 0 || a.MaxBytes < -1 {
		p.add("archive.max_bytes", "is %d, must be positive or -1 (unlimited)", a.MaxBytes)
	}
	if a.Replicas < 0 || a.Replicas > 5 {
		p.add("archive.replicas", "is %d, must be 0 (those of delivery.replicas) to 5", a.Replicas)
	}
}

func (t Tracing) validate(p *problems) {
	p.oneOf("tracing.exporter", t.Exporter, TracingOTLPHTTP, TracingOTLPGRPC)
	if t.Endpoint != "" {
		host, port, err := net.SplitHostPort(t.Endpoint)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			p.add("tracing.endpoint", "%q is not a host:port address (no scheme: tracing.insecure chooses TLS)", t.Endpoint)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		if !validHeaderName(k) {
			p.add("tracing.headers."+k, "is not a valid HTTP header name")
		}
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		p.add("tracing.sample_ratio", "is %v, must be 0 to 1", t.SampleRatio)
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		p.add("tracing.service_name", "is empty")
	}
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// MaxBundleHistory is the most revisions bundle.history may keep.
const MaxBundleHistory = 1000

func (b Bundle) validate(p *problems) {
	p.oneOf("bundle.source", b.Source, SourceFiles, SourceBundle)
	if b.History < 1 || b.History > MaxBundleHistory {
		p.add("bundle.history", "is %d, must be 1 to %d", b.History, MaxBundleHistory)
	}
	for i, k := range b.TrustedKeys {
		if !publicUserKey(k) {
			p.add(fmt.Sprintf("bundle.trusted_keys[%d]", i), "%q is not a public user nkey (56 characters starting with U; functions keygen prints one)", k)
		}
	}
}

// publicUserKey reports whether k has the form of a public user nkey: 56
// characters of base32 starting with U. (The checksum is checked where the
// key is used.)
func publicUserKey(k string) bool {
	if len(k) != 56 || k[0] != 'U' {
		return false
	}
	for _, c := range k {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func validateFunctions(p *problems, fns []Function) {
	seen := map[string]int{}
	for i, f := range fns {
		key := fmt.Sprintf("functions[%d]", i)
		p.ref = f.Ref
		if f.Ref == "" {
			p.add(key+".ref", "is empty")
		} else if j, dup := seen[f.Ref]; dup {
			p.add(key+".ref", "is also the ref of functions[%d]", j)
		} else {
			seen[f.Ref] = i
		}
		f.validate(p, key)
	}
	p.ref = ""
}

func (f Function) validate(p *problems, key string) {
	if f.TriggerType == "" {
		p.add(key+".trigger_type", "is empty")
	}
	if f.FailurePolicy != "" {
		p.oneOf(key+".failure_policy", f.FailurePolicy, FailurePolicyFail, FailurePolicyIgnore)
	}
	if f.Mode != "" {
		p.oneOf(key+".mode", f.Mode, ModeEnforce, ModeShadow)
	}
	if f.Timeout < 0 {
		p.add(key+".timeout", "is %v, must not be negative", f.Timeout)
	}
	if f.Schedule != nil {
		f.Schedule.validate(p, key+".schedule")
	}

	handlers := 0
	if f.Lua != nil {
		handlers++
		if f.Lua.File == "" {
			p.add(key+".lua.file", "is empty")
		}
	}
	if f.Webhook != nil {
		handlers++
		f.Webhook.validate(p, key+".webhook")
	}
	if f.Exec != nil {
		handlers++
		f.Exec.validate(p, key+".exec")
	}
	if handlers != 1 {
		p.add(key, "set exactly one of lua, webhook, exec")
	}
}

func (s Schedule) validate(p *problems, key string) {
	switch {
	case s.Every != 0 && s.Cron != "":
		p.add(key, "set one of every, cron, not both")
	case s.Every == 0 && s.Cron == "":
		p.add(key, "set one of every, cron")
	}
	if s.Every < 0 {
		p.add(key+".every", "is %v, must be positive", s.Every)
	}
	if s.Cron != "" {
		// The one reading of cron is package schedule's; its message
		// without the sentinel and the word the key already says.
		if _, err := schedule.Parse(0, s.Cron, "", ""); err != nil {
			msg := strings.TrimPrefix(err.Error(), schedule.ErrInvalid.Error()+": ")
			p.add(key+".cron", "%s", strings.TrimPrefix(msg, "cron "))
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			p.add(key+".timezone", "%q is not a known time zone", s.Timezone)
		}
	}
	if s.Start != "" {
		if s.Cron != "" {
			p.add(key+".start", "applies to every, not to cron")
		}
		if !validClock(s.Start) {
			p.add(key+".start", "%q is not a time of day HH:MM or HH:MM:SS", s.Start)
		}
	}
	if s.BEUUID != "" {
		p.uuid(key+".be_uuid", s.BEUUID)
	}
	if s.CustomerUUID != "" {
		if s.BEUUID == "" {
			p.add(key+".customer_uuid", "is set without be_uuid: a customer belongs to a billing entity")
		}
		p.uuid(key+".customer_uuid", s.CustomerUUID)
	}
}

// maxUUID is the longest UUID a schedule takes (schedule.MaxUUIDLen).
const maxUUID = 64

// uuid checks an FCO UUID loosely: a token of letters, digits, '-', '_'
// and '.', at most maxUUID long.
func (p *problems) uuid(key, s string) {
	bad := strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' || r > unicode.MaxASCII
	})
	if bad || len(s) > maxUUID {
		p.add(key, "%q is not a UUID (at most %d letters, digits, '-', '_' and '.')", s, maxUUID)
	}
}

// validClock reports whether s is "HH:MM" or "HH:MM:SS" on a 24-hour clock.
func validClock(s string) bool {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if _, err := time.Parse(layout, s); err == nil && len(s) == len(layout) {
			return true
		}
	}
	return false
}

func (w WebhookFunc) validate(p *problems, key string) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		p.add(key+".url", "is empty")
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.add(key+".url", "is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(key+".url", "%q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		p.add(key+".url", "%q has no host", u.Redacted())
	}
	if w.Timeout < 0 {
		p.add(key+".timeout", "is %v, must not be negative", w.Timeout)
	}
	if w.MaxBodyBytes < 0 {
		p.add(key+".max_body_bytes", "is %d, must not be negative", w.MaxBodyBytes)
	}
	if w.Format != "" {
		p.oneOf(key+".format", w.Format, WebhookFormatJSON, WebhookFormatCloudEvents)
	}
}

func (e ExecFunc) validate(p *problems, key string) {
	if len(e.Command) == 0 || e.Command[0] == "" {
		p.add(key+".command", "is empty: give the program and its arguments as a list")
	}
	for i, name := range e.Env {
		if name == "" || strings.ContainsAny(name, "= \t") {
			p.add(fmt.Sprintf("%s.env[%d]", key, i), "%q is not an environment variable name", name)
		}
	}
	if e.MaxOutputBytes < 0 {
		p.add(key+".max_output_bytes", "is %d, must not be negative", e.MaxOutputBytes)
	}
}
