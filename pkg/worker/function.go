package worker

import (
	"errors"

	"github.com/triggerbus/triggerbus/internal/matcher"
)

// Function is one function registered with a worker: its ref, the trigger
// type and options it runs for, its PRE settings, its timeout, its
// [handlers.Handler] and, for a SCHEDULED function, its
// [schedule.Schedule]. Give functions to [New] and [Worker.Replace], which
// check them all before any serves.
//
// Its fields are documented in package internal/matcher, which validates
// and indexes functions: Ref (unique, not empty), TriggerType (of the
// catalogue), Options (empty means ANY for an option-less type),
// Priority (ascending, ties by ref), FailurePolicy and Mode (PRE types
// only), Timeout (0 means [DefaultTimeout]), Schedule (SCHEDULED
// functions only, and they must have one), Source (where it was defined,
// for error messages) and Handler (not nil).
type Function = matcher.Function

// FailurePolicy says what an error or a timeout of a PRE function does to
// the action: [FailClosed] (the default) refuses it, [FailOpen] lets it
// continue.
type FailurePolicy = matcher.FailurePolicy

// Mode says whether a PRE function's decision counts: [Enforce] (the
// default) or [Shadow] (recorded, never refuses nor modifies).
type Mode = matcher.Mode

// The failure policies and modes of a PRE function.
const (
	FailClosed = matcher.FailClosed
	FailOpen   = matcher.FailOpen
	Enforce    = matcher.Enforce
	Shadow     = matcher.Shadow
)

// DefaultTimeout is the timeout of a function whose Timeout is 0.
const DefaultTimeout = matcher.DefaultTimeout

// Registration errors. Every problem [New] and [Worker.Replace] find in the
// functions they are given is a *[FunctionError] naming the function; it
// matches [ErrInvalidFunction] and the problem's own sentinel under
// errors.Is (one of these, or one of package subjects for an unknown type
// or option).
var (
	ErrInvalidFunction    = matcher.ErrInvalidFunction
	ErrNoHandler          = errors.New("worker: no handler")
	ErrEmptyRef           = matcher.ErrEmptyRef
	ErrDuplicateRef       = matcher.ErrDuplicateRef
	ErrNoOptions          = matcher.ErrNoOptions
	ErrAnyMixed           = matcher.ErrAnyMixed
	ErrDuplicateOption    = matcher.ErrDuplicateOption
	ErrPreOnly            = matcher.ErrPreOnly
	ErrUnknownPolicy      = matcher.ErrUnknownPolicy
	ErrUnknownMode        = matcher.ErrUnknownMode
	ErrScheduleNotAllowed = matcher.ErrScheduleNotAllowed
	ErrScheduleRequired   = matcher.ErrScheduleRequired
	ErrNegativeTimeout    = matcher.ErrNegativeTimeout
)

// FunctionError is one problem with one function, e.g.
//
//	function "deny_big" (scripts/quota.lua:3): PRE_CREATE: unknown option "SERVERR" (did you mean "SERVER"?)
type FunctionError = matcher.FunctionError

// compile checks fns and indexes them. Any problem is an error joining one
// *FunctionError per problem, and no set: a worker serves all the functions
// it is given or none.
func compile(fns []Function) (*matcher.Set, error) {
	set, err := matcher.Build(fns)
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = append(errs, j.Unwrap()...)
	}
	for i, f := range fns {
		if f.Handler == nil {
			errs = append(errs, &FunctionError{Ref: f.Ref, Index: i, Source: f.Source, Err: ErrNoHandler})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}
