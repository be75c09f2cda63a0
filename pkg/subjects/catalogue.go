package subjects

import (
	"fmt"
	"slices"
	"strings"
)

// Phase says whether a trigger runs before its action (PRE, a synchronous
// decision) or after it (POST, asynchronous).
type Phase uint8

// The phases of a trigger type.
const (
	PhasePre Phase = iota + 1
	PhasePost
)

// String returns "PRE" or "POST".
func (p Phase) String() string {
	switch p {
	case PhasePre:
		return "PRE"
	case PhasePost:
		return "POST"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// OptionKind names the set of values the option of a trigger type comes from.
type OptionKind string

// The option kinds of the catalogue.
const (
	// OptionNone: the type has no options; it is always published and
	// registered with option ANY.
	OptionNone OptionKind = "none"
	// OptionResourceType: a ResourceType enum value (closed set).
	OptionResourceType OptionKind = "resource_type"
	// OptionServerStatus: a ServerStatus enum value (closed set).
	OptionServerStatus OptionKind = "server_status"
	// OptionJobStatus: a JobStatus enum value (closed set).
	OptionJobStatus OptionKind = "job_status"
	// OptionUserAPIMethod: a User API method name (open set).
	OptionUserAPIMethod OptionKind = "user_api_method"
	// OptionAdminAPIMethod: an Admin API method name (open set).
	OptionAdminAPIMethod OptionKind = "admin_api_method"
	// OptionErrorType: an error value (open set; no values are known).
	OptionErrorType OptionKind = "error_type"
	// OptionUnknown: the type takes options whose list is not known (open set).
	OptionUnknown OptionKind = "unknown"
)

// Closed reports whether every valid option of the kind is in the catalogue,
// so that an option outside it is an error.
func (k OptionKind) Closed() bool {
	switch k {
	case OptionResourceType, OptionServerStatus, OptionJobStatus:
		return true
	}
	return false
}

// HasOptions reports whether types of this kind take options other than ANY.
func (k OptionKind) HasOptions() bool { return k != OptionNone }

// TriggerType is one entry of the trigger catalogue. Values returned by this
// package point into the catalogue and must not be modified.
type TriggerType struct {
	// Name is the trigger type as written in subjects and scripts, e.g. "PRE_CREATE".
	Name string
	// Phase is PRE (request-reply decision) or POST (asynchronous).
	Phase Phase
	// Event is the event the type belongs to, e.g. "CREATE".
	Event string
	// OptionKind says where the type's options come from.
	OptionKind OptionKind
	// Description is one sentence on when the trigger runs.
	Description string

	// closed is the set of valid options for closed kinds, nil otherwise.
	closed map[string]struct{}
	// knownSet holds the catalogue's values for the kind, for Known.
	knownSet map[string]struct{}
	// known is the catalogue's values for the kind (sorted), for listing.
	known []string
}

// IsPre reports whether the type is a PRE (request-reply) trigger.
func (t *TriggerType) IsPre() bool { return t.Phase == PhasePre }

// KnownOptions returns the catalogue's values for the type's option kind,
// sorted. For closed kinds it is the complete set; for open kinds the known
// values only; for option-less types it is empty. The caller must not modify
// the returned slice.
func (t *TriggerType) KnownOptions() []string { return t.known }

// Known reports whether option is ANY or one of the catalogue's values for
// the type. For closed kinds that is validity; for open kinds it tells known
// values (safe as metric label values) from the rest. It does not allocate.
func (t *TriggerType) Known(option string) bool {
	_, ok := t.knownSet[option]
	return ok
}

// String returns the type's name.
func (t *TriggerType) String() string { return t.Name }

//go:generate go run ./internal/gencatalogue

// The indexes over the generated catalogue (catalogue_data.go), built once.
var (
	types     = buildTypes()
	typeIndex = indexTypes(types)
	typeNames = sortedNames(types)
)

func buildTypes() []*TriggerType {
	out := make([]*TriggerType, len(catalogueTypes))
	for i := range catalogueTypes {
		t := &catalogueTypes[i]
		t.known = catalogueEnums[t.OptionKind]
		t.knownSet = make(map[string]struct{}, len(t.known)+1)
		t.knownSet[Any] = struct{}{}
		for _, v := range t.known {
			t.knownSet[v] = struct{}{}
		}
		if t.OptionKind.Closed() {
			t.closed = t.knownSet
		}
		out[i] = t
	}
	return out
}

func indexTypes(ts []*TriggerType) map[string]*TriggerType {
	m := make(map[string]*TriggerType, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func sortedNames(ts []*TriggerType) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	slices.Sort(names)
	return names
}

// Types returns every trigger type of the catalogue in catalogue order. The
// caller must not modify the returned slice.
func Types() []*TriggerType { return types }

// Lookup returns the trigger type with the given name. An unknown name gives
// an error wrapping [ErrUnknownType] that suggests the nearest name.
func Lookup(name string) (*TriggerType, error) {
	if t, ok := typeIndex[name]; ok {
		return t, nil
	}
	return nil, &OptionError{Err: ErrUnknownType, Value: name, Suggestion: Suggest(name, typeNames)}
}

// Values returns the catalogue's values of an option kind, sorted. The caller
// must not modify the returned slice.
func Values(kind OptionKind) []string { return catalogueEnums[kind] }

// JobTypes returns the JobType enum values (not an option set, but what
// job-state functions filter on), sorted. The caller must not modify it.
func JobTypes() []string { return catalogueJobTypes }

// Suggest returns the member of set nearest to s (a case-insensitive match, or
// an edit distance of at most 2, or a third of the length for long values),
// or "" when nothing is near.
func Suggest(s string, set []string) string {
	if s == "" {
		return ""
	}
	for _, v := range set {
		if strings.EqualFold(v, s) {
			return v
		}
	}
	limit := max(2, len(s)/3)
	best, bestD := "", limit+1
	up := strings.ToUpper(s)
	for _, v := range set {
		d := editDistance(up, strings.ToUpper(v), bestD)
		if d < bestD {
			best, bestD = v, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or a value >= bound
// once it is known to reach bound.
func editDistance(a, b string, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
