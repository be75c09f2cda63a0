package subjects

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"trigger.POST_CREATE.SERVER", "trigger.PRE_AUTH.ANY", "trigger.POST_USER_API_CALL.createServer",
		"trigger.POST_CREATE.ANY", "trigger..", "trigger.POST_CREATE.a b", "trigger.X.Y.Z", "trigger.POST_CREATE.\xff",
	} {
		f.Add("trigger", s)
	}
	f.Add("fco.eu1.trigger", "fco.eu1.trigger.PRE_CREATE.DISK")
	f.Fuzz(func(t *testing.T, prefix, subject string) {
		s, err := NewScheme(prefix)
		if err != nil {
			if server.IsValidLiteralSubject(prefix) && !strings.ContainsAny(prefix, "*> \t\r\n\f") && validRunes(prefix) && !longToken(prefix) {
				t.Fatalf("NewScheme(%q) = %v, but nats-server accepts it", prefix, err)
			}
			return
		}
		if !server.IsValidPublishSubject(s.All()[:len(s.All())-2]) {
			t.Fatalf("NewScheme(%q) accepted a prefix nats-server rejects", prefix)
		}
		got, err := s.Parse(subject)
		if err != nil {
			return
		}
		// Valid for us means valid for the server, and a literal subject.
		if !server.IsValidPublishSubject(subject) {
			t.Fatalf("Parse(%q) accepted a subject nats-server rejects", subject)
		}
		// Round trip.
		built, err := s.Build(got.Type.Name, got.Option)
		if err != nil {
			t.Fatalf("Build(%q, %q) after Parse(%q): %v", got.Type.Name, got.Option, subject, err)
		}
		if built != subject {
			t.Fatalf("Build(Parse(%q)) = %q", subject, built)
		}
		// The pattern that serves it matches it, per nats-server.
		if !server.SubjectMatchesFilter(subject, s.Pattern(got.Type.Name, Any)) ||
			!server.SubjectMatchesFilter(subject, s.Pattern(got.Type.Name, got.Option)) {
			t.Fatalf("patterns of %q do not match it", subject)
		}
	})
}

func validRunes(s string) bool {
	for _, r := range s {
		if r == 0xfffd || isSpaceOrControl(r) || r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func longToken(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if len(tok) > MaxTokenLen {
			return true
		}
	}
	return false
}
