package worker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Origin makes and checks Trigger-Origin values. With a fleet key, values are
// <ref>/<event id>/<expiry ms>/<HMAC> and only values whose HMAC and expiry
// check out are honoured, so a forged flag cannot silence triggers. Without a
// key, any value is honoured. An Origin is immutable and safe for concurrent use.
type Origin struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// DefaultOriginTTL is how long a signed Trigger-Origin value stays valid.
const DefaultOriginTTL = 5 * time.Minute

// NewOrigin returns an Origin for the fleet key (nil or empty: unsigned
// values) whose signed values stay valid for ttl (0: DefaultOriginTTL).
func NewOrigin(key []byte, ttl time.Duration) *Origin {
	if ttl <= 0 {
		ttl = DefaultOriginTTL
	}
	return &Origin{key: key, ttl: ttl, now: time.Now}
}

// Signed reports whether the Origin has a fleet key.
func (o *Origin) Signed() bool { return len(o.key) > 0 }

// Stamp returns the Trigger-Origin value for what function ref causes while
// handling event id.
func (o *Origin) Stamp(ref, id string) string {
	base := ref + "/" + id
	if !o.Signed() {
		return base
	}
	signed := base + "/" + strconv.FormatInt(o.now().Add(o.ttl).UnixMilli(), 10)
	return signed + "/" + o.mac(signed)
}

// Verify reports whether a Trigger-Origin value is to be honoured: any
// non-empty value without a key; with a key, a value whose HMAC verifies and
// whose expiry has not passed.
func (o *Origin) Verify(value string) bool {
	if value == "" {
		return false
	}
	if !o.Signed() {
		return true
	}
	i := strings.LastIndexByte(value, '/')
	if i <= 0 {
		return false
	}
	signed, sum := value[:i], value[i+1:]
	j := strings.LastIndexByte(signed, '/')
	if j <= 0 {
		return false
	}
	exp, err := strconv.ParseInt(signed[j+1:], 10, 64)
	if err != nil || o.now().UnixMilli() > exp {
		return false
	}
	want := o.mac(signed)
	return hmac.Equal([]byte(sum), []byte(want))
}

func (o *Origin) mac(s string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
