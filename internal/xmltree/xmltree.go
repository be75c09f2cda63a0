package xmltree

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Bounds of a document [Parse] reads: the nesting of its elements, and its
// nodes.
const (
	MaxDepth = 256
	MaxNodes = 1 << 18
)

// Kind is what a [Node] is.
type Kind uint8

const (
	Document Kind = iota
	Element
	Text
	Comment
	ProcInst
	Directive
)

// Node is a node of a document. Change a tree through the methods, which
// keep its links and its names valid.
type Node struct {
	Kind Kind
	// Name is an element's name as written (prefix:local), a processing
	// instruction's target.
	Name  string
	Attrs []Attr
	// Text is a text, comment, processing instruction or directive.
	Text     string
	Children []*Node
	Parent   *Node
}

// Attr is an attribute of an element.
type Attr struct{ Name, Value string }

func xmlName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// Parse reads a whole document, with encoding/xml's tokenizer, which
// expands no external entity and reads no DTD.
func Parse(s string) (*Node, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	doc := &Node{Kind: Document}
	cur, depth, nodes := doc, 0, 0
	add := func(n *Node) {
		n.Parent = cur
		cur.Children = append(cur.Children, n)
		nodes++
	}
	for nodes <= MaxNodes {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > MaxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d levels", MaxDepth)
			}
			if cur == doc && slices.ContainsFunc(doc.Children, func(c *Node) bool { return c.Kind == Element }) {
				return nil, errors.New("more than one root element")
			}
			n := &Node{Kind: Element, Name: xmlName(t.Name)}
			for _, a := range t.Attr {
				n.Attrs = append(n.Attrs, Attr{xmlName(a.Name), a.Value})
			}
			add(n)
			cur = n
		case xml.EndElement:
			if cur.Kind != Element || cur.Name != xmlName(t.Name) {
				return nil, fmt.Errorf("element <%s> closed by </%s>", cur.Name, xmlName(t.Name))
			}
			cur, depth = cur.Parent, depth-1
		case xml.CharData:
			if last := len(cur.Children) - 1; last >= 0 && cur.Children[last].Kind == Text {
				cur.Children[last].Text += string(t)
				continue
			}
			add(&Node{Kind: Text, Text: string(t)})
		case xml.Comment:
			add(&Node{Kind: Comment, Text: string(t)})
		case xml.ProcInst:
			add(&Node{Kind: ProcInst, Name: t.Target, Text: string(t.Inst)})
		case xml.Directive:
			add(&Node{Kind: Directive, Text: string(t)})
		}
	}
	if nodes > MaxNodes {
		return nil, fmt.Errorf("more than %d nodes", MaxNodes)
	}
	if cur != doc {
		return nil, fmt.Errorf("element <%s> is not closed", cur.Name)
	}
	if doc.Root() == nil {
		return nil, errors.New("no root element")
	}
	return doc, nil
}

// Root returns a document's root element.
func (n *Node) Root() *Node {
	for _, c := range n.Children {
		if c.Kind == Element {
			return c
		}
	}
	return nil
}

// Document returns the document n is part of, or its topmost node.
func (n *Node) Document() *Node {
	for n.Parent != nil {
		n = n.Parent
	}
	return n
}

// TextContent returns the text of n and its descendants.
func (n *Node) TextContent() string {
	if n.Kind == Text {
		return n.Text
	}
	var b strings.Builder
	var walk func(*Node)
	walk = func(n *Node) {
		for _, c := range n.Children {
			switch c.Kind {
			case Text:
				b.WriteString(c.Text)
			case Element:
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

func nameMatches(seg, name string) bool {
	if seg == "*" || seg == name {
		return true
	}
	_, local, ok := strings.Cut(name, ":")
	return ok && !strings.Contains(seg, ":") && seg == local
}

// Find returns the elements at path from n (see the package comment), at
// most one unless all.
func (n *Node) Find(path string, all bool) []*Node {
	var segs []string
	for seg := range strings.SplitSeq(path, "/") {
		if seg = strings.TrimSpace(seg); seg != "" {
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		return nil
	}
	from := n
	if strings.HasPrefix(strings.TrimSpace(path), "/") {
		from = n.Document()
	}
	var out []*Node
	var walk func(n *Node, segs []string) bool
	walk = func(n *Node, segs []string) bool {
		for _, c := range n.Children {
			if c.Kind != Element || !nameMatches(segs[0], c.Name) {
				continue
			}
			if len(segs) == 1 {
				out = append(out, c)
				if !all {
					return true
				}
				continue
			}
			if walk(c, segs[1:]) {
				return true
			}
		}
		return false
	}
	walk(from, segs)
	if len(out) == 0 && from.Kind == Element && nameMatches(segs[0], from.Name) {
		// The path names the node itself first: CONFIG/meta from <CONFIG>.
		if len(segs) == 1 {
			return []*Node{from}
		}
		walk(from, segs[1:])
	}
	return out
}

// AddElement appends a new element to n.
func (n *Node) AddElement(name, text string, hasText bool) (*Node, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%q is not an XML element name", name)
	}
	switch n.Kind {
	case Document:
		if n.Root() != nil {
			return nil, errors.New("the document has a root element already")
		}
	case Element:
	default:
		return nil, errors.New("only elements and documents have children")
	}
	c := &Node{Kind: Element, Name: name, Parent: n}
	if hasText {
		c.Children = []*Node{{Kind: Text, Text: text, Parent: c}}
	}
	n.Children = append(n.Children, c)
	return c, nil
}

// ValidName reports whether name is an XML name.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_' || r == ':' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || r >= 0x80:
		case i > 0 && (r == '-' || r == '.' || ('0' <= r && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// String writes n as XML.
func (n *Node) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;",
		"\n", "&#xA;", "\r", "&#xD;", "\t", "&#x9;")
)

func (n *Node) write(b *strings.Builder) {
	switch n.Kind {
	case Document:
		for _, c := range n.Children {
			c.write(b)
		}
	case Element:
		b.WriteString("<" + n.Name)
		for _, a := range n.Attrs {
			b.WriteString(" " + a.Name + `="`)
			attrEscaper.WriteString(b, a.Value)
			b.WriteByte('"')
		}
		if len(n.Children) == 0 {
			b.WriteString("/>")
			return
		}
		b.WriteByte('>')
		for _, c := range n.Children {
			c.write(b)
		}
		b.WriteString("</" + n.Name + ">")
	case Text:
		textEscaper.WriteString(b, n.Text)
	case Comment:
		b.WriteString("<!--" + n.Text + "-->")
	case ProcInst:
		b.WriteString("<?" + n.Name)
		if n.Text != "" {
			b.WriteString(" " + n.Text)
		}
		b.WriteString("?>")
	case Directive:
		b.WriteString("<!" + n.Text + ">")
	}
}

// Attr returns the value of the attribute name.
func (n *Node) Attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// SetAttr sets the attribute name of element n.
func (n *Node) SetAttr(name, value string) error {
	if n.Kind != Element || !ValidName(name) {
		return errors.New("want an element and an attribute name")
	}
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			n.Attrs[i].Value = value
			return nil
		}
	}
	n.Attrs = append(n.Attrs, Attr{name, value})
	return nil
}

// RemoveAttr removes the attribute name of n, if it has one.
func (n *Node) RemoveAttr(name string) {
	n.Attrs = slices.DeleteFunc(n.Attrs, func(a Attr) bool { return a.Name == name })
}

// SetText replaces the children of n, an element, with one text. It does
// nothing to a node that is not an element.
func (n *Node) SetText(text string) {
	if n.Kind == Element {
		n.Children = []*Node{{Kind: Text, Text: text, Parent: n}}
	}
}

// Remove takes n out of its parent.
func (n *Node) Remove() {
	if p := n.Parent; p != nil {
		p.Children = slices.DeleteFunc(p.Children, func(c *Node) bool { return c == n })
		n.Parent = nil
	}
}
