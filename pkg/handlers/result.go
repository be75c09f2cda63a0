package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// One reader for the results of every kind. Exec and webhook documents
// (ParseResult) and Lua tables (the lua kind) are described as ResultValues
// and read by ReadResult, so that the keys, their case, the types they take
// and the exit states are the same whatever language wrote the result.
//
// The keys are FDL's, exactly as FDL scripts write them: exitState,
// errorCode, errorMessage and input. returnCode is tolerated with the value
// CONTINUE only, a slip seen in FDL trigger code. Any other key, a key in
// another case (exitstate), or a value of the wrong type makes the result
// bad: an error wrapping ErrBadResult that names the key. A PRE chain
// refuses on it (HANDLER_ERROR) whatever the function's failure policy,
// since the function answered and its answer cannot be read.

// ErrBadResult is wrapped by errors about a function's result document.
var ErrBadResult = errors.New("handlers: bad result")

// ResultError says what is wrong with a result; it wraps [ErrBadResult].
type ResultError struct {
	// Reason says what is wrong, naming the key.
	Reason string
}

func (e *ResultError) Error() string { return ErrBadResult.Error() + ": " + e.Reason }
func (e *ResultError) Unwrap() error { return ErrBadResult }

func badResult(format string, args ...any) error {
	return &ResultError{Reason: fmt.Sprintf(format, args...)}
}

// resultKeys are the keys a result may have.
var resultKeys = []string{"exitState", "errorCode", "errorMessage", "input"}

// ResultKind is what a value of a result is, whatever its language.
type ResultKind int

// The kinds of result values.
const (
	ResultNull   ResultKind = iota // JSON null, trigger.null
	ResultString                   // a string
	ResultNumber                   // a number
	ResultOther                    // anything else: never a valid exitState, errorCode or errorMessage
)

// ResultValue is one value of a result, as the kind that read it describes
// it to [ReadResult].
type ResultValue struct {
	Kind ResultKind
	// Text is a string's value or a number's text.
	Text string
	// What names the value's type in its language's words, for errors
	// ("a JSON object", "a table").
	What string
}

// ReadResult reads the fields of a result, by key, with the rules every
// kind shares (see [ParseResult]); errors are *[ResultError]s. It leaves
// Input to the caller: only the kind knows how to encode its value. Kinds
// whose results are not JSON documents (Lua tables) describe them with it.
func ReadResult(fields map[string]ResultValue) (Result, error) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(resultKeys, k) || k == "returnCode" {
			continue
		}
		for _, known := range resultKeys {
			if strings.EqualFold(k, known) {
				return Result{}, badResult("unknown key %q (keys are case-sensitive: %s)", k, known)
			}
		}
		return Result{}, badResult("unknown key %q (want exitState, errorCode, errorMessage or input)", k)
	}

	r := Result{ExitState: Continue}
	switch v := fields["exitState"]; v.Kind {
	case ResultNull:
	case ResultString:
		st, err := ParseExitState(v.Text)
		if err != nil {
			return Result{}, err
		}
		r.ExitState = st
	default:
		return Result{}, badResult("exitState is %s, want a string", v.What)
	}
	if v, ok := fields["returnCode"]; ok && v.Kind != ResultNull {
		if v.Kind != ResultString || !strings.EqualFold(strings.TrimSpace(v.Text), string(Continue)) {
			return Result{}, badResult("returnCode is FDL's key for action functions, not trigger results (want exitState)")
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"errorCode", &r.ErrorCode}, {"errorMessage", &r.ErrorMessage}} {
		switch v := fields[f.name]; v.Kind {
		case ResultNull:
		case ResultString, ResultNumber:
			*f.dst = v.Text
		default:
			return Result{}, badResult("%s is %s, want a string", f.name, v.What)
		}
	}
	return r, nil
}

// ParseResult reads a function's result document (FDL convention): empty
// input or JSON null is CONTINUE; otherwise it must be one JSON object with
// only the keys exitState (SUCCESS, CONTINUE or FAILED in any case; missing
// or null is CONTINUE), errorCode and errorMessage (strings; a number is
// kept as written), and input (the modified input, any JSON value; null is
// none). Keys are case-sensitive and may appear once. returnCode
// "CONTINUE" is accepted as CONTINUE, for FDL scripts that write it. Any
// other document is an error wrapping [ErrBadResult] that names what is
// wrong.
func ParseResult(data []byte) (Result, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return Result{ExitState: Continue}, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &doc); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Result{}, badResult("the result is a JSON %s, want an object", te.Value)
		}
		return Result{}, fmt.Errorf("%w: not a JSON object: %w", ErrBadResult, err)
	}
	if k, ok := duplicateKey(trimmed); ok {
		return Result{}, badResult("key %q appears more than once", k)
	}
	fields := make(map[string]ResultValue, len(doc))
	for k, raw := range doc {
		fields[k] = jsonResultValue(raw)
	}
	r, err := ReadResult(fields)
	if err != nil {
		return Result{}, err
	}
	if in := bytes.TrimSpace(doc["input"]); len(in) > 0 && string(in) != "null" {
		r.Input = json.RawMessage(in)
	}
	return r, nil
}

// jsonResultValue describes raw, one valid JSON value.
func jsonResultValue(raw json.RawMessage) ResultValue {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ResultValue{Kind: ResultNull, What: "null"}
	}
	switch raw[0] {
	case 'n':
		return ResultValue{Kind: ResultNull, What: "null"}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ResultValue{Kind: ResultOther, What: "a bad JSON string"}
		}
		return ResultValue{Kind: ResultString, Text: s, What: "a JSON string"}
	case '{':
		return ResultValue{Kind: ResultOther, What: "a JSON object"}
	case '[':
		return ResultValue{Kind: ResultOther, What: "a JSON array"}
	case 't', 'f':
		return ResultValue{Kind: ResultOther, What: "a JSON boolean"}
	}
	return ResultValue{Kind: ResultNumber, Text: string(raw), What: "a JSON number"}
}

// duplicateKey returns a key that appears more than once at the top of
// data, a valid JSON object. encoding/json keeps the last of them, so
// {"exitState":"FAILED","exitState":"SUCCESS"} would otherwise allow.
func duplicateKey(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return "", false
	}
	seen := make(map[string]struct{})
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, _ := tok.(string)
		if _, ok := seen[k]; ok {
			return k, true
		}
		seen[k] = struct{}{}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// ParseExitState reads an exit state in any case; "" is CONTINUE.
func ParseExitState(s string) (ExitState, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "CONTINUE":
		return Continue, nil
	case "SUCCESS":
		return Success, nil
	case "FAILED":
		return Failed, nil
	}
	return "", badResult("unknown exitState %q (want SUCCESS, CONTINUE or FAILED)", s)
}

// Validate reports whether r is a result a function may return: ExitState
// is "" or exactly one of [Success], [Continue] and [Failed], and Input,
// when set, is one JSON value. The worker checks the result of every call
// with it, so that a Go function's ExitState("failed") refuses rather than
// counting as CONTINUE. Errors wrap [ErrBadResult].
func (r Result) Validate() error {
	switch r.ExitState {
	case "", Success, Continue, Failed:
	default:
		return badResult("unknown exitState %q (want SUCCESS, CONTINUE or FAILED)", string(r.ExitState))
	}
	if r.Input != nil && !json.Valid(r.Input) {
		return badResult("input is not one JSON value")
	}
	return nil
}
