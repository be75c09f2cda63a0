package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Codes of a [Decision] that triggerbus sets itself; a function that refuses
// an action chooses its own code.
const (
	CodeTimeout           = "TIMEOUT"
	CodeHandlerError      = "HANDLER_ERROR"
	CodeBadRequest        = "BAD_REQUEST"
	CodeTriggerOriginated = "TRIGGER_ORIGINATED"
	CodeNoWorker          = "NO_WORKER"
	CodeNoTrigger         = "NO_TRIGGER"
	CodeExpired           = "EXPIRED"
	CodeShuttingDown      = "SHUTTING_DOWN"
	CodeFailed            = "FAILED"
	// CodeDecisionTooLarge refuses a request whose decision, as built, was
	// larger than the NATS connection can carry (its max payload); the
	// message gives the sizes.
	CodeDecisionTooLarge = "DECISION_TOO_LARGE"
	// CodeBadReply is the SDK's refusal when something answered a PRE
	// request with what is not a decision.
	CodeBadReply = "BAD_REPLY"
)

// Outcomes of one function in a decision, and of a function run generally.
const (
	OutcomeSuccess  = "SUCCESS"
	OutcomeContinue = "CONTINUE"
	OutcomeFailed   = "FAILED"
	OutcomeError    = "ERROR"
	OutcomeTimeout  = "TIMEOUT"
)

// Decision is the single answer to a PRE request.
type Decision struct {
	ID       string          `json:"id"`
	Allowed  bool            `json:"allowed"`
	Code     string          `json:"code,omitempty"`
	Message  string          `json:"message,omitempty"`
	Function string          `json:"function,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
	Modified bool            `json:"modified"`
	// Functions lists what each function that ran returned, in order.
	Functions []FunctionResult `json:"functions"`
	// Revision is the revision of the fleet's function bundle whose
	// functions made the decision; 0 (omitted) when the worker serves the
	// functions of its own files, or answered before running any.
	Revision uint64 `json:"revision,omitempty"`
}

// FunctionResult is one function's part in a decision.
type FunctionResult struct {
	Ref    string  `json:"ref"`
	Result string  `json:"result"`
	Ms     float64 `json:"ms"`
	// Shadow is true for a function in shadow mode: Result is what it would
	// have decided, and it did not change the decision.
	Shadow bool `json:"shadow,omitempty"`
	// Error is the error text of an ERROR or TIMEOUT outcome.
	Error string `json:"error,omitempty"`
}

// Encode returns the JSON of the decision; a nil Functions is written as [].
// It does not modify d.
func (d *Decision) Encode() ([]byte, error) {
	return d.AppendEncode(make([]byte, 0, 160+len(d.Input)+64*len(d.Functions)))
}

// AppendEncode appends the JSON of the decision, as Encode returns it, to b
// and returns the extended buffer; on an error it returns nil.
func (d *Decision) AppendEncode(b []byte) ([]byte, error) {
	b, err := d.appendJSON(b)
	if err != nil {
		return nil, fmt.Errorf("event: decision: %w", err)
	}
	return b, nil
}

// DecodeDecision parses a PRE reply. It reads what encoding/json reads,
// without reflection (decisiondecode.go).
func DecodeDecision(data []byte) (*Decision, error) {
	return DecodeDecisionFor(data, "")
}

// decisionBlock is a decision and the first of its function results, made
// together.
type decisionBlock struct {
	d   Decision
	fns [1]FunctionResult
}

// DecodeDecisionFor is DecodeDecision for the reply to the event id: it
// gives the same decision, with fewer allocations (the decision's id, when
// it is id, shares id's string).
func DecodeDecisionFor(data []byte, id string) (*Decision, error) {
	blk := new(decisionBlock)
	d := &blk.d
	if decodeDecisionFor(data, d, id, &blk.fns) != nil {
		// Not a decision: encoding/json says why, in the words callers
		// have always read (it fails too: FuzzDecodeDecisionParity).
		*d = Decision{}
		if err := json.Unmarshal(data, d); err != nil {
			return nil, fmt.Errorf("event: decision: %w", err)
		}
	}
	if d.ID == "" && d.Code == "" && !d.Allowed {
		return nil, errors.New("event: decision: reply has none of id, allowed, code")
	}
	return d, nil
}
