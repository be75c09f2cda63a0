package worker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Origin makes and checks Trigger-Origin values, the loop flag.
//
// Without a fleet key a value is <ref>/<event id> and any non-empty value is
// honoured, on any subject: the flag then only stops loops that well-behaved
// functions and systems would otherwise start.
//
// With a key, a value is <ref>/<event id>/<expiry ms>/<scope>/<HMAC>, and the
// scope says what it may silence:
//
//   - "msg": the value of one message a function sends on the bus (Bus,
//     Lua trigger.publish/request, adminAPI/userAPI, pkg/client with the
//     call's context). Its HMAC covers the subject and the body of that
//     message, so it is honoured only on a message with the same subject
//     and the same bytes: copied onto another subject or another event it
//     silences nothing.
//   - "ext": the value given outside the bus (webhook header, the
//     TRIGGER_ORIGIN of exec commands, simplehttp requests). It tells the
//     receiver which function and event caused the call, and it verifies,
//     but it is never honoured: whatever a receiver publishes with it fires
//     its triggers.
//
// A value is honoured until its expiry, at most [MaxOriginTTL] (plus a minute
// of clock skew) ahead of the verifier's clock. The unscoped signed values of
// earlier versions (<ref>/<event id>/<expiry>/<HMAC>) are not honoured.
// Ref and event id are path-escaped, so values are header-safe and '/' only
// separates fields.
//
// An Origin is immutable and safe for concurrent use.
type Origin struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

const (
	// DefaultOriginTTL is how long a signed Trigger-Origin value stays valid
	// by default.
	DefaultOriginTTL = 5 * time.Minute
	// MaxOriginTTL is the longest a signed Trigger-Origin value may stay
	// valid: a value read off the bus can be replayed (onto an identical
	// message) for at most that long.
	MaxOriginTTL = time.Hour
	// originClockSkew is how far ahead of the verifier's clock (beyond
	// MaxOriginTTL) a signer's clock may run.
	originClockSkew = time.Minute
)

// The scopes of a signed value.
const (
	scopeMessage  = "msg"
	scopeExternal = "ext"
)

// originDomain separates the HMACs of Trigger-Origin values from any other
// use of the key, and this format from earlier ones.
const originDomain = "triggerbus trigger-origin v2"

// Reasons a Trigger-Origin value is not honoured, returned by
// [Origin.Verify].
var (
	ErrOriginMalformed = errors.New("worker: Trigger-Origin is not a signed value")
	ErrOriginLegacy    = errors.New("worker: Trigger-Origin is signed in the unscoped format of earlier versions")
	ErrOriginExpired   = errors.New("worker: Trigger-Origin has expired")
	ErrOriginLifetime  = errors.New("worker: Trigger-Origin expires later than the longest lifetime allows")
	ErrOriginSignature = errors.New("worker: Trigger-Origin does not verify for this subject and body")
	ErrOriginExternal  = errors.New("worker: Trigger-Origin was given outside the bus and silences nothing")
)

// NewOrigin returns an Origin for the fleet key (nil or empty: unsigned
// values) whose signed values stay valid for ttl (0: DefaultOriginTTL; more
// than MaxOriginTTL: MaxOriginTTL, which [New] refuses).
func NewOrigin(key []byte, ttl time.Duration) *Origin {
	if ttl <= 0 {
		ttl = DefaultOriginTTL
	}
	return &Origin{key: key, ttl: min(ttl, MaxOriginTTL), now: time.Now}
}

// Signed reports whether the Origin has a fleet key.
func (o *Origin) Signed() bool { return len(o.key) > 0 }

// Stamp returns the Trigger-Origin value for the message with subject and
// data that function ref sends while handling event id.
func (o *Origin) Stamp(ref, id, subject string, data []byte) string {
	return o.value(scopeMessage, ref, id, subject, data)
}

// Identify returns the Trigger-Origin value given outside the bus (webhooks,
// commands, HTTP requests) for a call of function ref for event id. With a
// key it silences nothing.
func (o *Origin) Identify(ref, id string) string {
	return o.value(scopeExternal, ref, id, "", nil)
}

// identifyIn is [Origin.Identify] written into buf when the value is
// unsigned and fits: the string is a view of buf, which the caller never
// changes afterwards, so a call's value costs no allocation of its own.
func (o *Origin) identifyIn(buf []byte, ref, id string) string {
	if o.Signed() {
		return o.Identify(ref, id)
	}
	r, i := pathEscape(ref), pathEscape(id) // no allocation when nothing is escaped
	n := len(r) + 1 + len(i)
	if n > len(buf) {
		return r + "/" + i
	}
	copy(buf[copy(buf, r):], "/")
	copy(buf[len(r)+1:], i)
	return unsafe.String(&buf[0], n)
}

// pathEscape is url.PathEscape with a table look-up per byte for the common
// case, a ref or an event id with nothing to escape: it is on the path of
// every call.
func pathEscape(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved[s[i]] {
			return url.PathEscape(s)
		}
	}
	return s
}

// unreserved marks the bytes url.PathEscape leaves as they are that a ref
// or an id is made of: letters, digits, '-', '_', '.' and '~' (RFC 3986's
// unreserved characters).
var unreserved = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

func (o *Origin) value(scope, ref, id, subject string, data []byte) string {
	base := url.PathEscape(ref) + "/" + url.PathEscape(id)
	if !o.Signed() {
		return base
	}
	signed := base + "/" + strconv.FormatInt(o.now().Add(o.ttl).UnixMilli(), 10) + "/" + scope
	return signed + "/" + o.mac(scope, signed, subject, data)
}

// Verify returns nil if value, the Trigger-Origin of a message with subject
// and data, is to be honoured, and otherwise an error wrapping one of the
// ErrOrigin* reasons. Without a key any non-empty value is honoured.
func (o *Origin) Verify(subject string, data []byte, value string) error {
	if value == "" {
		return ErrOriginMalformed
	}
	if !o.Signed() {
		return nil
	}
	fields := strings.Split(value, "/")
	n := len(fields)
	if n == 4 && isDigits(fields[2]) {
		return ErrOriginLegacy
	}
	if n != 5 {
		return ErrOriginMalformed
	}
	exp, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil || !isDigits(fields[2]) {
		return ErrOriginMalformed
	}
	scope := fields[3]
	if scope != scopeMessage && scope != scopeExternal {
		return ErrOriginMalformed
	}
	signed := value[:len(value)-len(fields[4])-1]
	if scope == scopeExternal {
		subject, data = "", nil
	}
	if !hmac.Equal([]byte(fields[4]), []byte(o.mac(scope, signed, subject, data))) {
		return ErrOriginSignature
	}
	if scope == scopeExternal {
		return ErrOriginExternal
	}
	now := o.now()
	if now.UnixMilli() > exp {
		return ErrOriginExpired
	}
	if exp > now.Add(MaxOriginTTL+originClockSkew).UnixMilli() {
		return ErrOriginLifetime
	}
	return nil
}

// mac is the HMAC of a signed value: over the domain, the scope, the
// value's fields and, for the message scope, the subject and the SHA-256 of
// the body, each length-prefixed so that no two inputs share an encoding.
func (o *Origin) mac(scope, signed, subject string, data []byte) string {
	m := hmac.New(sha256.New, o.key)
	writeField(m, []byte(originDomain))
	writeField(m, []byte(scope))
	writeField(m, []byte(signed))
	if scope == scopeMessage {
		writeField(m, []byte(subject))
		sum := sha256.Sum256(data)
		writeField(m, sum[:])
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	h.Write(b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
