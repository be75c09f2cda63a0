package config

import (
	"reflect"
	"regexp"
	"strings"
	"time"
)

// listIndex matches the index of a list item in a dotted key.
var listIndex = regexp.MustCompile(`\[\d+\]`)

// knownKeys returns every key a config file may hold, as dotted paths in
// which the items of a list are written "[]" ("functions[].trigger_type");
// it is read from the mapstructure tags of [Config].
func knownKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			keys[key] = true
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
				walk(key+".", ft)
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				walk(key+".", ft.Elem())
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(key+"[].", ft.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}

// suggestKey returns the known key nearest to the unknown dotted key, in
// the same section, or "" when none is near: the same words without the
// underscores or the case (triggerType, trigger-type and triggertype are
// trigger_type), else one at most two edits away (one for names of three
// letters or fewer). The list indexes of key are kept in the suggestion.
func suggestKey(key string) string {
	key = strings.ToLower(key)
	parent, name := "", key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		parent, name = key[:i+1], key[i+1:]
	}
	section := listIndex.ReplaceAllString(parent, "[]")
	best, bestDist := "", 0
	for k := range knownKeys() {
		cand, ok := strings.CutPrefix(k, section)
		if !ok || strings.Contains(cand, ".") {
			continue
		}
		d := levenshtein(squash(name), squash(cand))
		if d == 0 {
			return parent + cand
		}
		limit := 2
		if len(cand) <= 3 {
			limit = 1
		}
		if d <= limit && (best == "" || d < bestDist || (d == bestDist && cand < best)) {
			best, bestDist = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return parent + best
}

// squash drops the separators and the case of a key's words.
func squash(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
