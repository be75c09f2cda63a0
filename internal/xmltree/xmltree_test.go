package xmltree

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	docs := []string{
		`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<!DOCTYPE CONFIG>` + "\n" +
			`<CONFIG a="1 &amp; 2" b="&quot;q&quot;"><!-- c --><meta>  x &lt; y  </meta><e/></CONFIG>` + "\n",
		`<s:a xmlns:s="urn:s"><s:b>t</s:b></s:a>`,
	}
	for _, doc := range docs {
		n, err := Parse(doc)
		if err != nil {
			t.Fatalf("Parse(%q) error = %v", doc, err)
		}
		if got := n.String(); got != doc {
			t.Errorf("round trip of\n%s\n= %s", doc, got)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"", "no root element"},
		{"<!-- only -->", "no root element"},
		{"<a><b></a>", "closed by"},
		{"<a>", "not closed"},
		{"<a/><b/>", "more than one root"},
		{"<a>&undefined;</a>", "entity"},
		{strings.Repeat("<a>", MaxDepth+1), "nested deeper"},
		{"<a>" + strings.Repeat("<b/>", MaxNodes) + "</a>", "more than"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.doc); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) error = %v, want %q", tt.doc, err, tt.want)
		}
	}
}
