package worker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

// fixedOrigin returns an Origin with key and ttl whose clock reads *now.
func fixedOrigin(key string, ttl time.Duration, now *time.Time) *Origin {
	o := NewOrigin([]byte(key), ttl)
	o.now = func() time.Time { return *now }
	return o
}

// legacyStamp is a value in the unscoped format of earlier versions:
// <ref>/<id>/<expiry>/<HMAC of "<ref>/<id>/<expiry>">.
func legacyStamp(key, ref, id string, exp time.Time) string {
	signed := ref + "/" + id + "/" + strconv.FormatInt(exp.UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(signed))
	return signed + "/" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestOriginVerify: with a key, a stamped value is honoured only on the
// message it was stamped for (same subject, same body) until it expires;
// values given outside the bus verify but silence nothing; copies onto
// another subject or body, other keys, tampered, legacy, expired and
// too-long-lived values are not honoured, each with its reason.
func TestOriginVerify(t *testing.T) {
	const (
		key  = "fleet-key"
		ref  = "echo_create"
		id   = "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
		subj = "trigger.POST_CREATE.SERVER"
	)
	body := []byte(`{"input":{"echo":true}}`)
	now := time.UnixMilli(1764420000000)
	o := fixedOrigin(key, time.Minute, &now)
	stamped := o.Stamp(ref, id, subj, body)
	later := now.Add(2 * time.Minute)
	longLived := fixedOrigin(key, time.Minute, &now)
	longLived.ttl = 3 * time.Hour // only a misconfigured signer does this

	tests := []struct {
		name    string
		verify  *Origin
		subject string
		data    []byte
		value   string
		want    error
	}{
		{"the message it was stamped for", o, subj, body, stamped, nil},
		{"another subject", o, "trigger.PRE_CREATE.SERVER", body, stamped, ErrOriginSignature},
		{"another body", o, subj, []byte(`{"input":{"echo":false}}`), stamped, ErrOriginSignature},
		{"no body", o, subj, nil, stamped, ErrOriginSignature},
		{"another key", fixedOrigin("other-key", time.Minute, &now), subj, body, stamped, ErrOriginSignature},
		{"another ref", o, subj, body, strings.Replace(stamped, ref, "other_fn", 1), ErrOriginSignature},
		{"another expiry", o, subj, body, strings.Replace(stamped, strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10), strconv.FormatInt(now.Add(50*time.Minute).UnixMilli(), 10), 1), ErrOriginSignature},
		{"given outside the bus", o, subj, body, o.Identify(ref, id), ErrOriginExternal},
		{"given outside the bus, relabelled msg", o, subj, body, strings.Replace(o.Identify(ref, id), "/ext/", "/msg/", 1), ErrOriginSignature},
		{"stamped, relabelled ext", o, subj, body, strings.Replace(stamped, "/msg/", "/ext/", 1), ErrOriginSignature},
		{"legacy format", o, subj, body, legacyStamp(key, ref, id, now.Add(time.Minute)), ErrOriginLegacy},
		{"expired", fixedOrigin(key, time.Minute, &later), subj, body, stamped, ErrOriginExpired},
		{"expiry beyond the longest lifetime", o, subj, body, longLived.Stamp(ref, id, subj, body), ErrOriginLifetime},
		{"unsigned", o, subj, body, ref + "/" + id, ErrOriginMalformed},
		{"unknown scope", o, subj, body, strings.Replace(stamped, "/msg/", "/all/", 1), ErrOriginMalformed},
		{"garbage", o, subj, body, "////", ErrOriginMalformed},
		{"empty", o, subj, body, "", ErrOriginMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.verify.Verify(tt.subject, tt.data, tt.value); !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q, %q, %q) = %v, want %v", tt.subject, tt.data, tt.value, err, tt.want)
			}
		})
	}
}

// TestOriginEscapes: refs and event ids with '/' or line breaks give values
// of five fields with no control characters, which verify.
func TestOriginEscapes(t *testing.T) {
	now := time.UnixMilli(1764420000000)
	o := fixedOrigin("k", time.Minute, &now)
	v := o.Stamp("a/b", "x/y\r\nTrigger-Origin: forged", "s", nil)
	if strings.ContainsAny(v, "\r\n ") || strings.Count(v, "/") != 4 {
		t.Fatalf("Stamp = %q, want five '/'-separated fields without control characters", v)
	}
	if err := o.Verify("s", nil, v); err != nil {
		t.Errorf("Verify(Stamp) = %v, want nil", err)
	}
	if got, want := NewOrigin(nil, 0).Identify("a/b", "1"), "a%2Fb/1"; got != want {
		t.Errorf("unsigned Identify = %q, want %q", got, want)
	}
}

// TestOriginUnsigned: without a key values are <ref>/<id>, the same inside
// and outside the bus, and any non-empty value is honoured anywhere.
func TestOriginUnsigned(t *testing.T) {
	o := NewOrigin(nil, 0)
	if got := o.Stamp("f", "1", "trigger.POST_CREATE.SERVER", []byte("x")); got != "f/1" {
		t.Errorf("Stamp = %q, want f/1", got)
	}
	if got := o.Identify("f", "1"); got != "f/1" {
		t.Errorf("Identify = %q, want f/1", got)
	}
	for _, v := range []string{"f/1", "anything", "a/b/1/ext/x"} {
		if err := o.Verify("trigger.PRE_CREATE.SERVER", nil, v); err != nil {
			t.Errorf("Verify(%q) = %v, want nil (unsigned: trust-based)", v, err)
		}
	}
	if err := o.Verify("s", nil, ""); err == nil {
		t.Error(`Verify("") = nil, want an error`)
	}
}

// TestLoopTTLMaximum: NewOrigin never signs for longer than MaxOriginTTL,
// and New refuses a LoopTTL above it.
func TestLoopTTLMaximum(t *testing.T) {
	if o := NewOrigin([]byte("k"), 87600*time.Hour); o.ttl != MaxOriginTTL {
		t.Errorf("NewOrigin(87600h).ttl = %v, want %v", o.ttl, MaxOriginTTL)
	}
	nc := natstest.Connect(t, natstest.RunServer(t))
	if _, err := New(nc, Config{LoopKey: []byte("k"), LoopTTL: 87600 * time.Hour}); err == nil || !strings.Contains(err.Error(), "longer than the maximum") {
		t.Errorf("New(LoopTTL 87600h) error = %v, want one about the maximum", err)
	}
	w, err := New(nc, Config{LoopKey: []byte("k"), LoopTTL: MaxOriginTTL})
	if err != nil {
		t.Fatalf("New(LoopTTL = MaxOriginTTL): %v", err)
	}
	if w.Origin().ttl != MaxOriginTTL {
		t.Errorf("ttl = %v, want %v", w.Origin().ttl, MaxOriginTTL)
	}
}

// TestOriginIdentifyIn: the value written into a call's own bytes is
// Identify's, escaped or not; a longer one, or a signed one, is made as
// Identify makes it, and the bytes are left alone.
func TestOriginIdentifyIn(t *testing.T) {
	long := strings.Repeat("r", 120)
	for _, o := range []*Origin{NewOrigin(nil, 0), NewOrigin([]byte("k"), time.Minute)} {
		for _, c := range []struct{ ref, id string }{
			{"acme.quota", "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"},
			{"a/b c", "id/1?"},
			{long, "1"},
			{"", ""},
		} {
			var buf [originInline]byte
			got := o.identifyIn(buf[:], c.ref, c.id)
			if want := o.Identify(c.ref, c.id); !o.Signed() && got != want {
				t.Errorf("identifyIn(%q, %q) = %q, want %q", c.ref, c.id, got, want)
			}
			if o.Signed() && (!strings.HasPrefix(got, o.Identify(c.ref, c.id)[:len(url.PathEscape(c.ref))+1]) || buf != [originInline]byte{}) {
				t.Errorf("signed identifyIn(%q, %q) = %q, buf changed %v", c.ref, c.id, got, buf != [originInline]byte{})
			}
			if len(got) > originInline && buf != [originInline]byte{} {
				t.Errorf("identifyIn(%q, %q): a value longer than the buffer was written into it", c.ref, c.id)
			}
		}
	}
}

func TestPathEscapeMatchesURL(t *testing.T) {
	for c := range 256 {
		for _, s := range []string{string(rune(c)), "ref" + string([]byte{byte(c)}) + "x", string([]byte{byte(c)})} {
			if got, want := pathEscape(s), url.PathEscape(s); got != want {
				t.Errorf("pathEscape(%q) = %q, url.PathEscape = %q", s, got, want)
			}
		}
	}
	for _, s := range []string{"", "noop", "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "a/b", "é", "a b", "x;y,z?"} {
		if got, want := pathEscape(s), url.PathEscape(s); got != want {
			t.Errorf("pathEscape(%q) = %q, url.PathEscape = %q", s, got, want)
		}
	}
}
