package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KeyLines returns the line of each key of the YAML file at path, so that a
// problem found after Load can point at it: dotted lower-case keys such as
// "scripts.dir", and "functions[2]" (with "functions[2].ref", ...) for the
// items of a list. It returns nil when path is "" or the file cannot be
// read or parsed (Load reports that).
func KeyLines(path string) map[string]int {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	lines := map[string]int{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := prefix + strings.ToLower(n.Content[i].Value)
				lines[key] = n.Content[i].Line
				walk(key+".", n.Content[i+1])
			}
		case yaml.SequenceNode:
			base := strings.TrimSuffix(prefix, ".")
			for i, item := range n.Content {
				key := fmt.Sprintf("%s[%d]", base, i)
				lines[key] = item.Line
				walk(key+".", item)
			}
		}
	}
	walk("", doc.Content[0])
	return lines
}
