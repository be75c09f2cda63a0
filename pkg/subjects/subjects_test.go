package subjects

import (
	"errors"
	"strings"
	"testing"
)

func TestCatalogue(t *testing.T) {
	if got := len(Types()); got != 27 {
		t.Fatalf("len(Types()) = %d, want 27", got)
	}
	counts := map[OptionKind]int{
		OptionResourceType: 55, OptionServerStatus: 11, OptionJobStatus: 7,
		OptionUserAPIMethod: 111, OptionErrorType: 0,
	}
	for k, want := range counts {
		if got := len(Values(k)); got != want {
			t.Errorf("len(Values(%s)) = %d, want %d", k, got, want)
		}
	}
	if got := len(JobTypes()); got != 146 {
		t.Errorf("len(JobTypes()) = %d, want 146", got)
	}
	pre := 0
	for _, tt := range Types() {
		if err := ValidateToken(tt.Name); err != nil {
			t.Errorf("type %q: %v", tt.Name, err)
		}
		if tt.IsPre() {
			pre++
		}
		if tt.Description == "" || tt.Event == "" {
			t.Errorf("type %s: missing description or event", tt.Name)
		}
		for _, v := range tt.KnownOptions() {
			if err := ValidateToken(v); err != nil {
				t.Errorf("type %s option %q: %v", tt.Name, v, err)
			}
		}
	}
	if pre != 12 {
		t.Errorf("PRE types = %d, want 12", pre)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		give      string
		wantPhase Phase
		wantKind  OptionKind
	}{
		{"PRE_CREATE", PhasePre, OptionResourceType},
		{"POST_SERVER_STATE_CHANGE", PhasePost, OptionServerStatus},
		{"SCHEDULED", PhasePost, OptionNone},
		{"TAX_CALCULATION", PhasePre, OptionUnknown},
		{"POST_JOB_STATE_CHANGE", PhasePost, OptionJobStatus},
		{"PRE_USER_API_CALL", PhasePre, OptionUserAPIMethod},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := Lookup(tt.give)
			if err != nil {
				t.Fatalf("Lookup(%q) error %v", tt.give, err)
			}
			if got.Phase != tt.wantPhase || got.OptionKind != tt.wantKind {
				t.Errorf("Lookup(%q) = %v/%v, want %v/%v", tt.give, got.Phase, got.OptionKind, tt.wantPhase, tt.wantKind)
			}
		})
	}
}

func TestLookupUnknownSuggests(t *testing.T) {
	tests := []struct{ give, want string }{
		{"PRE_CRATE", "PRE_CREATE"},
		{"pre_create", "PRE_CREATE"},
		{"POST_JOB_STATE_CHANG", "POST_JOB_STATE_CHANGE"},
		{"NOTHING_LIKE_IT_AT_ALL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := Lookup(tt.give)
			if !errors.Is(err, ErrUnknownType) {
				t.Fatalf("Lookup(%q) = %v, want ErrUnknownType", tt.give, err)
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Suggestion != tt.want {
				t.Errorf("Lookup(%q) suggestion = %q, want %q (%v)", tt.give, oe.Suggestion, tt.want, err)
			}
		})
	}
}

func TestValidateToken(t *testing.T) {
	good := []string{"SERVER", "createServer", "a", strings.Repeat("x", MaxTokenLen), "naïve", "a-b_c:d"}
	for _, g := range good {
		if err := ValidateToken(g); err != nil {
			t.Errorf("ValidateToken(%q) = %v, want nil", g, err)
		}
	}
	bad := []struct {
		give string
		want error
	}{
		{"", ErrEmptyToken},
		{"a.b", ErrInvalidToken},
		{"a*", ErrInvalidToken},
		{">", ErrInvalidToken},
		{"a b", ErrInvalidToken},
		{"a\tb", ErrInvalidToken},
		{"a\x00", ErrInvalidToken},
		{"a\x7f", ErrInvalidToken},
		{"\xff", ErrInvalidToken},
		{"a\u00a0b", ErrInvalidToken},
		{strings.Repeat("x", MaxTokenLen+1), ErrInvalidToken},
	}
	for _, tt := range bad {
		if err := ValidateToken(tt.give); !errors.Is(err, tt.want) {
			t.Errorf("ValidateToken(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
}

func TestValidateOption(t *testing.T) {
	ok := []struct{ typ, opt string }{
		{"PRE_CREATE", "SERVER"},
		{"PRE_CREATE", "ANY"},
		{"PRE_AUTH", "ANY"},
		{"SCHEDULED", "ANY"},
		{"POST_USER_API_CALL", "createServer"},
		{"POST_USER_API_CALL", "someFutureMethod"},
		{"POST_AUTH", "SUCCESS"},
		{"POST_EXCEPTION", "ErrorInternal"},
		{"POST_JOB_STATE_CHANGE", "FAILED"},
	}
	for _, tt := range ok {
		typ, _ := Lookup(tt.typ)
		if err := ValidateOption(typ, tt.opt); err != nil {
			t.Errorf("ValidateOption(%s, %q) = %v, want nil", tt.typ, tt.opt, err)
		}
	}
	bad := []struct {
		typ, opt   string
		want       error
		suggestion string
	}{
		{"PRE_CREATE", "SERVERR", ErrUnknownOption, "SERVER"},
		{"PRE_CREATE", "server", ErrUnknownOption, "SERVER"},
		{"POST_SERVER_STATE_CHANGE", "RUNING", ErrUnknownOption, "RUNNING"},
		{"PRE_AUTH", "SUCCESS", ErrAnyRequired, ""},
		{"POST_USER_API_CALL", "a.b", ErrInvalidToken, ""},
	}
	for _, tt := range bad {
		typ, _ := Lookup(tt.typ)
		err := ValidateOption(typ, tt.opt)
		if !errors.Is(err, tt.want) {
			t.Errorf("ValidateOption(%s, %q) = %v, want %v", tt.typ, tt.opt, err, tt.want)
			continue
		}
		if tt.suggestion != "" && !strings.Contains(err.Error(), `did you mean "`+tt.suggestion+`"`) {
			t.Errorf("ValidateOption(%s, %q) = %v, want suggestion %q", tt.typ, tt.opt, err, tt.suggestion)
		}
	}
}

func TestBuild(t *testing.T) {
	s, err := NewScheme("fco.eu1.trigger")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ typ, opt, want string }{
		{"POST_CREATE", "SERVER", "fco.eu1.trigger.POST_CREATE.SERVER"},
		{"PRE_AUTH", "ANY", "fco.eu1.trigger.PRE_AUTH.ANY"},
		{"PRE_USER_API_CALL", "createServer", "fco.eu1.trigger.PRE_USER_API_CALL.createServer"},
	}
	for _, tt := range tests {
		got, err := s.Build(tt.typ, tt.opt)
		if err != nil || got != tt.want {
			t.Errorf("Build(%q, %q) = %q, %v, want %q", tt.typ, tt.opt, got, err, tt.want)
		}
	}
	bad := []struct {
		typ, opt string
		want     error
	}{
		{"POST_CREATE", "ANY", ErrAnyNotAllowed},
		{"POST_CRATE", "SERVER", ErrUnknownType},
		{"POST_CREATE", "SERVERR", ErrUnknownOption},
		{"SCHEDULED", "HOURLY", ErrAnyRequired},
		{"POST_USER_API_CALL", "", ErrEmptyToken},
	}
	for _, tt := range bad {
		if _, err := s.Build(tt.typ, tt.opt); !errors.Is(err, tt.want) {
			t.Errorf("Build(%q, %q) = %v, want %v", tt.typ, tt.opt, err, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	s, _ := NewScheme(DefaultPrefix)
	got, err := s.Parse("trigger.POST_JOB_STATE_CHANGE.FAILED")
	if err != nil || got.Type.Name != "POST_JOB_STATE_CHANGE" || got.Option != "FAILED" {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	bad := []struct {
		give string
		want error
	}{
		{"other.POST_CREATE.SERVER", ErrPrefix},
		{"trigger.POST_CREATE", ErrMalformed},
		{"trigger.POST_CREATE.SERVER.x", ErrMalformed},
		{"trigger.POST_CREATE.ANY", ErrAnyNotAllowed},
		{"trigger.POST_CREATE.*", ErrInvalidToken},
		{"trigger.NOPE.SERVER", ErrUnknownType},
		{"trigger..SERVER", ErrMalformed},
		{"trigger.POST_CREATE.", ErrEmptyToken},
		{"trigger", ErrPrefix},
	}
	for _, tt := range bad {
		if _, err := s.Parse(tt.give); !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
}

func TestParseNoAlloc(t *testing.T) {
	s, _ := NewScheme(DefaultPrefix)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Parse("trigger.PRE_CREATE.SERVER"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times, want 0", allocs)
	}
}

func TestNewScheme(t *testing.T) {
	for _, p := range []string{"", "a..b", "a.*", "a b", ".a"} {
		if _, err := NewScheme(p); err == nil {
			t.Errorf("NewScheme(%q) = nil error, want error", p)
		}
	}
	s, err := NewScheme("fco.eu1.trigger")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Pattern("PRE_CREATE", Any); got != "fco.eu1.trigger.PRE_CREATE.*" {
		t.Errorf("Pattern(ANY) = %q", got)
	}
	if got := s.Pattern("PRE_CREATE", "DISK"); got != "fco.eu1.trigger.PRE_CREATE.DISK" {
		t.Errorf("Pattern(DISK) = %q", got)
	}
	if got := s.All(); got != "fco.eu1.trigger.>" {
		t.Errorf("All() = %q", got)
	}
	if got := s.DataStoreBucket(); got != "FCO_EU1_TRIGGER_DATASTORE" {
		t.Errorf("DataStoreBucket() = %q, want FCO_EU1_TRIGGER_DATASTORE", got)
	}
}

func BenchmarkParse(b *testing.B) {
	s, _ := NewScheme(DefaultPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Parse("trigger.POST_SERVER_STATE_CHANGE.RUNNING"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestJetStreamNames(t *testing.T) {
	s, err := NewScheme("fco.eu1.trigger")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"RegistryBucket", s.RegistryBucket(), "FCO_EU1_TRIGGER_REGISTRY"},
		{"EventStream", s.EventStream(), "FCO_EU1_TRIGGER_EVENTS"},
		{"DeadLetterStream", s.DeadLetterStream(), "FCO_EU1_TRIGGER_DLQ"},
		{"DeadLetterSubject", s.DeadLetterSubject("POST_CREATE", "SERVER"), "fco.eu1.trigger.dlq.POST_CREATE.SERVER"},
		{"DeadLetters", s.DeadLetters(), "fco.eu1.trigger.dlq.>"},
		{"DecisionStream", s.DecisionStream(), "FCO_EU1_TRIGGER_DECISIONS"},
		{"DecisionSubject", s.DecisionSubject("USER_LOGIN", "PASSWORD"), "fco.eu1.trigger.decisions.USER_LOGIN.PASSWORD"},
		{"Decisions", s.Decisions(), "fco.eu1.trigger.decisions.>"},
		{"FunctionsBucket", s.FunctionsBucket(), "FCO_EU1_TRIGGER_FUNCTIONS"},
		{"FunctionsHeadBucket", s.FunctionsHeadBucket(), "FCO_EU1_TRIGGER_FUNCTIONS_HEAD"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s() = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
