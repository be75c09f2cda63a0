package schedule

import (
	"fmt"
	"strings"
)

// Owner is the billing entity, and optionally the customer, that a
// schedule's ticks belong to, as every FCO code block belonged to a billing
// entity: a tick carries them in the event's beUUID and
// customer.resourceUUID, so that a scheduled script can look up its billing
// entity. The zero Owner is none; ticks then carry neither.
type Owner struct {
	// BEUUID is the billing entity's UUID.
	BEUUID string
	// CustomerUUID is the customer's UUID; it needs a BEUUID.
	CustomerUUID string
}

// MaxUUIDLen is the longest UUID an [Owner] takes. UUIDs are checked
// loosely, not for the 8-4-4-4-12 form: 1 to MaxUUIDLen letters, digits,
// '-', '_' and '.'.
const MaxUUIDLen = 64

// Check reports why o cannot be a schedule's owner, or nil. The zero Owner
// is valid; a customer needs a billing entity.
func (o Owner) Check() error {
	if o == (Owner{}) {
		return nil
	}
	if o.BEUUID == "" {
		return fmt.Errorf("%w: a customer UUID is given without a billing entity UUID", ErrInvalid)
	}
	if err := checkUUID("billing entity", o.BEUUID); err != nil {
		return err
	}
	if o.CustomerUUID != "" {
		return checkUUID("customer", o.CustomerUUID)
	}
	return nil
}

func checkUUID(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: the %s UUID is empty", ErrInvalid, what)
	case len(s) > MaxUUIDLen:
		return fmt.Errorf("%w: the %s UUID is %d characters, more than %d", ErrInvalid, what, len(s), MaxUUIDLen)
	case strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
	}):
		return fmt.Errorf("%w: the %s UUID %q has a character other than a letter, a digit, '-', '_' or '.'", ErrInvalid, what, s)
	}
	return nil
}

// WithOwner returns a copy of s whose ticks belong to o; s is unchanged.
// The zero Owner gives a schedule with no owner.
func (s *Schedule) WithOwner(o Owner) (*Schedule, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	c := *s
	c.owner = o
	return &c, nil
}

// Owner is who the schedule's ticks belong to; the zero Owner when nobody.
func (s *Schedule) Owner() Owner { return s.owner }
