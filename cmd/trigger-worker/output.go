package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// outputFormats are the values of -o: table for people, json and yaml for
// programs. The JSON of each command is documented in docs/cli.md and
// stays stable: fields are added, never renamed or removed.
var outputFormats = []string{"table", "json", "yaml"}

// outputFormat is the value of -o/--output; it refuses any other.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(s string) error {
	if !slices.Contains(outputFormats, s) {
		return fmt.Errorf("want %s", strings.Join(outputFormats, ", "))
	}
	*o = outputFormat(s)
	return nil
}

// addOutputFlag declares -o/--output on cmd.
func addOutputFlag(cmd *cobra.Command) *outputFormat {
	o := outputFormat("table")
	cmd.Flags().VarP(&o, "output", "o", "output format: "+strings.Join(outputFormats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// encode writes v as JSON (indented) or YAML, with the same field names:
// the YAML is the JSON's document in block style.
func encode(w io.Writer, format outputFormat, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "json" {
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	return writeYAML(w, data)
}

// writeYAML writes the JSON document data as YAML, keeping the order of
// its fields.
func writeYAML(w io.Writer, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	blockStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	return enc.Close()
}

// blockStyle clears the flow style JSON gives every mapping and list, and
// the quotes of strings that need none.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
