package subjects

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Any is the option that matches every option of a type. Option-less types are
// always published and registered with it.
const Any = "ANY"

// DefaultPrefix is the subject prefix when none is configured.
const DefaultPrefix = "trigger"

// DefaultQueue is the queue group the workers share when none is configured.
const DefaultQueue = "trigger-workers"

// MaxTokenLen is the longest valid subject token, in bytes.
const MaxTokenLen = 128

// Header names of the wire contract.
const (
	// HeaderOrigin flags everything a trigger function causes; a value the
	// worker honours (any value without a fleet key; with one, a value signed
	// for that very message) means no trigger fires for the message.
	HeaderOrigin = "Trigger-Origin"
	// HeaderMsgID carries the event id; JetStream de-duplicates on it.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderDeadline is the absolute deadline of a PRE request, Unix milliseconds.
	HeaderDeadline = "Trigger-Deadline"
	// HeaderTraceParent and HeaderTraceState carry the W3C trace context of
	// an event: the publisher's span, which a worker that traces continues.
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// Errors of this package. Every error returned wraps one of them.
var (
	ErrEmptyToken    = errors.New("subjects: empty token")
	ErrInvalidToken  = errors.New("subjects: invalid token")
	ErrUnknownType   = errors.New("subjects: unknown trigger type")
	ErrUnknownOption = errors.New("subjects: unknown option")
	ErrAnyRequired   = errors.New("subjects: type has no options, use ANY")
	ErrAnyNotAllowed = errors.New("subjects: ANY is not a concrete option")
	ErrPrefix        = errors.New("subjects: subject does not start with the prefix")
	ErrMalformed     = errors.New("subjects: malformed subject")
)

// OptionError is an unknown trigger type or option, with the nearest valid
// value when there is one. It wraps [ErrUnknownType] or [ErrUnknownOption].
type OptionError struct {
	Err        error
	Type       string // the trigger type, for an unknown option
	Value      string
	Suggestion string
}

func (e *OptionError) Error() string {
	var b strings.Builder
	if e.Err == ErrUnknownType {
		fmt.Fprintf(&b, "unknown trigger type %q", e.Value)
	} else {
		fmt.Fprintf(&b, "unknown option %q for %s", e.Value, e.Type)
	}
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggestion)
	}
	return b.String()
}

func (e *OptionError) Unwrap() error { return e.Err }

// ValidateToken checks one subject token: non-empty, valid UTF-8, at most
// [MaxTokenLen] bytes, with no '.', '*', '>', white space or control character.
func ValidateToken(tok string) error {
	if tok == "" {
		return ErrEmptyToken
	}
	if len(tok) > MaxTokenLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidToken, len(tok), MaxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '.' || c == '*' || c == '>':
			return fmt.Errorf("%w: %q has %q", ErrInvalidToken, tok, c)
		case c <= ' ' || c == 0x7f:
			return fmt.Errorf("%w: %q has white space or a control character", ErrInvalidToken, tok)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(tok[i:])
			if r == utf8.RuneError || isSpaceOrControl(r) {
				return fmt.Errorf("%w: %q has invalid UTF-8, white space or a control character", ErrInvalidToken, tok)
			}
			i += size - 1
		}
	}
	return nil
}

func isSpaceOrControl(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x85 || r == 0xa0 || r == 0x1680 ||
		(r >= 0x2000 && r <= 0x200a) || r == 0x2028 || r == 0x2029 || r == 0x202f ||
		r == 0x205f || r == 0x3000 || r == 0xfeff
}

// ValidateOption checks an option a function is registered for: ANY, or for
// a type with options a valid token that, for a closed set, is a member.
func ValidateOption(t *TriggerType, option string) error {
	if option == Any {
		return nil
	}
	if !t.OptionKind.HasOptions() {
		if err := ValidateToken(option); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s takes no option, got %q", ErrAnyRequired, t.Name, option)
	}
	return checkOption(t, option)
}

// ValidateEventOption checks the option of an event being published: ANY for
// an option-less type, else a concrete valid option (never ANY).
func ValidateEventOption(t *TriggerType, option string) error {
	if !t.OptionKind.HasOptions() {
		if option == Any {
			return nil
		}
		if err := ValidateToken(option); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s takes no option, got %q", ErrAnyRequired, t.Name, option)
	}
	if option == Any {
		return fmt.Errorf("%w: an event of %s names its %s", ErrAnyNotAllowed, t.Name, t.OptionKind)
	}
	return checkOption(t, option)
}

func checkOption(t *TriggerType, option string) error {
	if t.closed != nil {
		if _, ok := t.closed[option]; ok {
			return nil
		}
		if err := ValidateToken(option); err != nil {
			return err
		}
		return &OptionError{Err: ErrUnknownOption, Type: t.Name, Value: option, Suggestion: Suggest(option, t.known)}
	}
	return ValidateToken(option)
}

// Subject is a parsed event subject.
type Subject struct {
	// Type is the catalogue entry of the trigger type.
	Type *TriggerType
	// Option is the concrete option of the event (ANY for option-less types).
	Option string
}

// Scheme builds and parses the subjects under one prefix. The zero value is
// not usable; create one with [NewScheme]. A Scheme is immutable and safe for
// concurrent use.
type Scheme struct {
	prefix string
	dotted string // prefix + "."
}

// NewScheme returns the scheme for prefix, which may have several tokens
// (e.g. "fco.eu1.trigger"); each must be a valid token.
func NewScheme(prefix string) (Scheme, error) {
	if prefix == "" {
		return Scheme{}, fmt.Errorf("prefix: %w", ErrEmptyToken)
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if err := ValidateToken(tok); err != nil {
			return Scheme{}, fmt.Errorf("prefix %q: %w", prefix, err)
		}
	}
	return Scheme{prefix: prefix, dotted: prefix + "."}, nil
}

// Prefix returns the scheme's prefix.
func (s Scheme) Prefix() string { return s.prefix }

// Build returns the subject an event of type typ with the given option is
// published to, after checking both (see [ValidateEventOption]).
func (s Scheme) Build(typ, option string) (string, error) {
	t, err := Lookup(typ)
	if err != nil {
		return "", err
	}
	if err := ValidateEventOption(t, option); err != nil {
		return "", err
	}
	return s.dotted + t.Name + "." + option, nil
}

// Parse parses and validates an event subject. It does not allocate for a
// valid subject.
func (s Scheme) Parse(subject string) (Subject, error) {
	rest, ok := strings.CutPrefix(subject, s.dotted)
	if !ok {
		return Subject{}, fmt.Errorf("%w: %q does not start with %q", ErrPrefix, subject, s.dotted)
	}
	typ, option, ok := strings.Cut(rest, ".")
	if !ok {
		return Subject{}, fmt.Errorf("%w: %q has no option token", ErrMalformed, subject)
	}
	t, found := typeIndex[typ]
	if !found {
		if err := ValidateToken(typ); err != nil {
			return Subject{}, fmt.Errorf("%w: %q: type: %w", ErrMalformed, subject, err)
		}
		return Subject{}, &OptionError{Err: ErrUnknownType, Value: typ, Suggestion: Suggest(typ, typeNames)}
	}
	if strings.IndexByte(option, '.') >= 0 {
		return Subject{}, fmt.Errorf("%w: %q has tokens after the option", ErrMalformed, subject)
	}
	if err := ValidateEventOption(t, option); err != nil {
		return Subject{}, err
	}
	return Subject{Type: t, Option: option}, nil
}

// Pattern returns the subject a function registered for typ and option is
// served by: the type's wildcard <prefix>.<TYPE>.* for ANY, else the literal
// subject. The inputs are not validated.
func (s Scheme) Pattern(typ, option string) string {
	if option == Any {
		return s.dotted + typ + ".*"
	}
	return s.dotted + typ + "." + option
}

// All returns the full wildcard of the scheme, <prefix>.>.
func (s Scheme) All() string { return s.dotted + ">" }

// streamBase is the prefix in the form JetStream names take: upper case,
// with '_' for '.'.
func (s Scheme) streamBase() string {
	return strings.ToUpper(strings.ReplaceAll(s.prefix, ".", "_"))
}

// RegistryBucket is the JetStream key-value bucket in which workers record
// the PRE subjects that have functions, e.g. TRIGGER_REGISTRY.
func (s Scheme) RegistryBucket() string { return s.streamBase() + "_REGISTRY" }

// DataStoreBucket is the JetStream key-value bucket that keeps the private
// data maps of FDL scripts (their dataStore), one key per function ref,
// e.g. TRIGGER_DATASTORE.
func (s Scheme) DataStoreBucket() string { return s.streamBase() + "_DATASTORE" }

// RegistryKey is the key of the registry bucket for a PRE type and option
// (ANY for a type's wildcard registrations).
func RegistryKey(typ, option string) string { return typ + "." + option }

// EventStream is the JetStream stream that captures the POST and SCHEDULED
// subjects for durable delivery, e.g. TRIGGER_EVENTS.
func (s Scheme) EventStream() string { return s.streamBase() + "_EVENTS" }

// DeadLetterStream is the stream of events that failed every delivery,
// e.g. TRIGGER_DLQ.
func (s Scheme) DeadLetterStream() string { return s.streamBase() + "_DLQ" }

// DeadLetterSubject is the subject of the dead letter of an event of typ
// and option: <prefix>.dlq.<TYPE>.<OPTION>.
func (s Scheme) DeadLetterSubject(typ, option string) string {
	return s.dotted + "dlq." + typ + "." + option
}

// DeadLetters is the subject space of the dead letters: <prefix>.dlq.>.
func (s Scheme) DeadLetters() string { return s.dotted + "dlq.>" }

// ArchiveStream is the stream that keeps the events of the event stream
// after they were handled, for replay, e.g. TRIGGER_ARCHIVE.
func (s Scheme) ArchiveStream() string { return s.streamBase() + "_ARCHIVE" }

// DecisionStream is the stream of the decision log, one record per PRE
// decision, e.g. TRIGGER_DECISIONS.
func (s Scheme) DecisionStream() string { return s.streamBase() + "_DECISIONS" }

// DecisionSubject is the subject of the decision log record of a PRE
// decision on a type and option: <prefix>.decisions.<TYPE>.<OPTION>.
func (s Scheme) DecisionSubject(typ, option string) string {
	return s.dotted + "decisions." + typ + "." + option
}

// Decisions is the subject space of the decision log:
// <prefix>.decisions.>.
func (s Scheme) Decisions() string { return s.dotted + "decisions.>" }

// FunctionsBucket is the JetStream object store that holds the revisions of
// the fleet's function bundle, one object per revision, e.g.
// TRIGGER_FUNCTIONS.
func (s Scheme) FunctionsBucket() string { return s.streamBase() + "_FUNCTIONS" }

// FunctionsHeadBucket is the JetStream key-value bucket that names the
// active revision of the function bundle and the last revision number
// given out, e.g. TRIGGER_FUNCTIONS_HEAD.
func (s Scheme) FunctionsHeadBucket() string { return s.streamBase() + "_FUNCTIONS_HEAD" }
