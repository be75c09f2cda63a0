package matcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// DefaultTimeout is the timeout of a function whose [Function.Timeout] is 0.
const DefaultTimeout = 5 * time.Second

// scheduledType is the one trigger type whose functions have a schedule.
const scheduledType = "SCHEDULED"

// FailurePolicy says what an error or a timeout of a PRE function does to the
// action. It is a PRE-only setting.
type FailurePolicy string

// The failure policies of a PRE function.
const (
	// FailClosed: an error or timeout refuses the action. The default.
	FailClosed FailurePolicy = "fail"
	// FailOpen: an error or timeout is treated as CONTINUE and counted as
	// failed open.
	FailOpen FailurePolicy = "ignore"
)

// Mode says whether a PRE function's decision counts. It is a PRE-only
// setting.
type Mode string

// The modes of a PRE function.
const (
	// Enforce: the function's decision refuses or modifies the action. The
	// default.
	Enforce Mode = "enforce"
	// Shadow: the function runs and its decision is recorded, but it never
	// refuses or modifies the action.
	Shadow Mode = "shadow"
)

// Function is one trigger function registered with a worker, from config, a
// script or a Go program: what it runs for, how, and its handler. Package
// worker names it worker.Function; [Build] validates it.
type Function struct {
	// Ref is the function's unique name.
	Ref string
	// TriggerType is a trigger type of the catalogue, e.g. "PRE_CREATE".
	TriggerType string
	// Options are the options the function runs for; [subjects.Any] alone
	// means every option. Empty means ANY for an option-less type and is an
	// error for a type with options.
	Options []string
	// Priority orders the functions of an event, ascending; ties are broken
	// by Ref.
	Priority int
	// FailurePolicy is for PRE types only; "" means [FailClosed]. It must be
	// "" on other types.
	FailurePolicy FailurePolicy
	// Mode is for PRE types only; "" means [Enforce]. It must be "" on other
	// types.
	Mode Mode
	// Timeout bounds one run of the function; 0 means [DefaultTimeout]. It
	// must not be negative.
	Timeout time.Duration
	// Schedule is when a SCHEDULED function fires. SCHEDULED functions must
	// have one and no other function may.
	Schedule *schedule.Schedule
	// Source says where the function was defined, e.g.
	// "config/trigger-worker.yaml functions[2]" or "scripts/quota.lua:12".
	// It is used in error messages only; "" leaves it out.
	Source string
	// Handler runs the function. Build does not look at it; the worker
	// refuses a nil one.
	Handler handlers.Handler
}

// Errors of this package. Every problem [Build] reports is a
// *[FunctionError], which matches [ErrInvalidFunction] and one other sentinel
// under errors.Is: one of the list below, or one of package subjects
// ([subjects.ErrUnknownType], [subjects.ErrUnknownOption],
// [subjects.ErrAnyRequired], [subjects.ErrInvalidToken],
// [subjects.ErrEmptyToken]).
var (
	ErrInvalidFunction    = errors.New("matcher: invalid function")
	ErrEmptyRef           = errors.New("matcher: empty ref")
	ErrDuplicateRef       = errors.New("matcher: duplicate ref")
	ErrNoOptions          = errors.New("matcher: no options")
	ErrAnyMixed           = errors.New("matcher: ANY mixed with other options")
	ErrDuplicateOption    = errors.New("matcher: duplicate option")
	ErrPreOnly            = errors.New("matcher: setting is for PRE types only")
	ErrUnknownPolicy      = errors.New("matcher: unknown failure policy")
	ErrUnknownMode        = errors.New("matcher: unknown mode")
	ErrScheduleNotAllowed = errors.New("matcher: schedule on a type other than SCHEDULED")
	ErrScheduleRequired   = errors.New("matcher: SCHEDULED function without a schedule")
	ErrNegativeTimeout    = errors.New("matcher: negative timeout")
)

// FunctionError is one problem with one function given to [Build]. Its
// message names the function and where it was defined, e.g.
//
//	function "deny_big" (scripts/quota.lua:3): PRE_CREATE: unknown option "SERVERR" (did you mean "SERVER"?)
//
// It matches [ErrInvalidFunction] and the sentinel of the problem under
// errors.Is; for an unknown type or option errors.As also finds the
// *[subjects.OptionError] with its suggestion.
type FunctionError struct {
	// Ref is the function's ref, "" when it has none.
	Ref string
	// Index is the function's position in the slice given to Build.
	Index int
	// Source is the function's [Function.Source].
	Source string
	// Err is the problem.
	Err error
}

func (e *FunctionError) Error() string {
	var b strings.Builder
	if e.Ref != "" {
		fmt.Fprintf(&b, "function %q", e.Ref)
	} else {
		fmt.Fprintf(&b, "function at index %d", e.Index)
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " (%s)", e.Source)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns [ErrInvalidFunction] and the problem.
func (e *FunctionError) Unwrap() []error { return []error{ErrInvalidFunction, e.Err} }

// problem is one finding with its own message, wrapping the sentinel (or the
// subjects error) it is matched by.
type problem struct {
	msg string
	err error
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.err }

func newProblem(sentinel error, format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...), err: sentinel}
}

// entry validates f and returns it with defaults applied, or every problem
// found. Duplicate refs are Build's business.
func entry(f Function) (*Entry, []error) {
	var errs []error
	add := func(sentinel error, format string, args ...any) {
		errs = append(errs, newProblem(sentinel, format, args...))
	}
	if f.Ref == "" {
		add(ErrEmptyRef, "empty ref")
	}
	if f.Timeout < 0 {
		add(ErrNegativeTimeout, "negative timeout %v", f.Timeout)
	}

	t, err := subjects.Lookup(f.TriggerType)
	typeName := f.TriggerType
	switch {
	case f.TriggerType == "":
		errs = append(errs, &problem{msg: "no trigger type", err: err})
	case err != nil:
		errs = append(errs, err) // unknown trigger type "X" (did you mean "Y"?)
	default:
		typeName = t.Name
	}

	// Options.
	isAny := false
	count := make(map[string]int, len(f.Options))
	for _, o := range f.Options {
		count[o]++
		if count[o] == 2 {
			add(ErrDuplicateOption, "%s: option %q is listed more than once", typeName, o)
		}
		if count[o] > 1 {
			continue
		}
		if o == subjects.Any {
			isAny = true
			continue
		}
		var err error
		if t != nil {
			err = subjects.ValidateOption(t, o)
		} else {
			err = subjects.ValidateToken(o)
		}
		if err != nil {
			errs = append(errs, optionProblem(typeName, o, err))
		}
	}
	if isAny && len(count) > 1 {
		add(ErrAnyMixed, "%s: ANY is listed with other options; ANY alone already serves every option", typeName)
	}

	if t != nil {
		if len(f.Options) == 0 && t.OptionKind.HasOptions() {
			add(ErrNoOptions, "%s: no options; list the options to serve (%s), or ANY for all", t.Name, t.OptionKind)
		}
		if t.IsPre() {
			switch f.FailurePolicy {
			case "":
				f.FailurePolicy = FailClosed
			case FailClosed, FailOpen:
			default:
				add(ErrUnknownPolicy, "%s: unknown failure policy %q%s", t.Name, f.FailurePolicy,
					orSuggest(string(f.FailurePolicy), string(FailClosed), string(FailOpen)))
			}
			switch f.Mode {
			case "":
				f.Mode = Enforce
			case Enforce, Shadow:
			default:
				add(ErrUnknownMode, "%s: unknown mode %q%s", t.Name, f.Mode,
					orSuggest(string(f.Mode), string(Enforce), string(Shadow)))
			}
		} else {
			if f.FailurePolicy != "" {
				add(ErrPreOnly, "%s: failure policy %q is a PRE setting, %s is %s", t.Name, f.FailurePolicy, t.Name, t.Phase)
			}
			if f.Mode != "" {
				add(ErrPreOnly, "%s: mode %q is a PRE setting, %s is %s", t.Name, f.Mode, t.Name, t.Phase)
			}
		}
		switch {
		case t.Name == scheduledType && f.Schedule == nil:
			add(ErrScheduleRequired, "%s: no schedule", t.Name)
		case t.Name != scheduledType && f.Schedule != nil:
			add(ErrScheduleNotAllowed, "%s: has a schedule; only %s functions have one", t.Name, scheduledType)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if isAny || len(f.Options) == 0 {
		f.Options = []string{subjects.Any}
		isAny = true
	} else {
		f.Options = slices.Sorted(slices.Values(f.Options))
	}
	return &Entry{Function: f, Type: t, Any: isAny}, nil
}

// optionProblem rewords an error of subjects.ValidateOption for a function's
// message, keeping it in the chain.
func optionProblem(typeName, option string, err error) error {
	var oe *subjects.OptionError
	var msg string
	switch {
	case errors.As(err, &oe):
		msg = fmt.Sprintf("%s: unknown option %q", typeName, option)
		if oe.Suggestion != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", oe.Suggestion)
		}
	case errors.Is(err, subjects.ErrEmptyToken):
		msg = typeName + ": empty option"
	case errors.Is(err, subjects.ErrAnyRequired):
		msg = fmt.Sprintf("%s: takes no option, got %q; register it for ANY or with no options", typeName, option)
	case errors.Is(err, subjects.ErrInvalidToken):
		msg = typeName + ": invalid option" + strings.TrimPrefix(err.Error(), subjects.ErrInvalidToken.Error())
	default:
		msg = fmt.Sprintf("%s: option %q: %v", typeName, option, err)
	}
	return &problem{msg: msg, err: err}
}

// orSuggest returns the tail of an unknown-value message: the valid values,
// and the nearest one when there is one.
func orSuggest(got string, valid ...string) string {
	if s := subjects.Suggest(got, valid); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Sprintf(" (want %q or %q)", valid[0], valid[1])
}
