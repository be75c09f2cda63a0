package handlers

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// FDLXMLHelper: an XML document as a tree of nodes a script can find,
// change and write back, for the server metadata of
// PRE_SERVER_METADATA_UPDATE. It is read with encoding/xml's tokenizer,
// which expands no external entity and reads no DTD.
//
//	local xml = new("FDLXMLHelper")
//	local doc = xml:parse(p.input[2])             -- nil, err when not XML
//	local system = xml:findNode(doc, "CONFIG/meta/server/system")
//	xml:addTextNode(system, "backup", "enabled")  -- a <backup>enabled</backup> child
//	p.input[2] = xml:toString(doc)                -- write the document back
//
// findNode(node, path) follows element names separated by / from the
// node's children (from the root element for a document, or when the path
// starts with /); * matches any element. Nodes have the same functions as
// methods: doc:findNode(path), node:addNode(name), node:getText(), ...

// Bounds of a parsed document: the nesting of its elements, and its nodes.
const (
	fdlXMLMaxDepth = 256
	fdlXMLMaxNodes = 1 << 18
)

type fdlNodeKind uint8

const (
	fdlXMLDocument fdlNodeKind = iota
	fdlXMLElement
	fdlXMLText
	fdlXMLComment
	fdlXMLProcInst
	fdlXMLDirective
)

// fdlNode is a node of a document, the Value of a node's userdata.
type fdlNode struct {
	kind     fdlNodeKind
	name     string // an element's name as written (prefix:local), a processing instruction's target
	attrs    []fdlAttr
	text     string // a text, comment, processing instruction or directive
	children []*fdlNode
	parent   *fdlNode
}

type fdlAttr struct{ name, value string }

func fdlXMLName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// fdlParseXML parses a whole document.
func fdlParseXML(s string) (*fdlNode, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	doc := &fdlNode{kind: fdlXMLDocument}
	cur, depth, nodes := doc, 0, 0
	add := func(n *fdlNode) {
		n.parent = cur
		cur.children = append(cur.children, n)
		nodes++
	}
	for nodes <= fdlXMLMaxNodes {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > fdlXMLMaxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d levels", fdlXMLMaxDepth)
			}
			if cur == doc && slices.ContainsFunc(doc.children, func(c *fdlNode) bool { return c.kind == fdlXMLElement }) {
				return nil, errors.New("more than one root element")
			}
			n := &fdlNode{kind: fdlXMLElement, name: fdlXMLName(t.Name)}
			for _, a := range t.Attr {
				n.attrs = append(n.attrs, fdlAttr{fdlXMLName(a.Name), a.Value})
			}
			add(n)
			cur = n
		case xml.EndElement:
			if cur.kind != fdlXMLElement || cur.name != fdlXMLName(t.Name) {
				return nil, fmt.Errorf("element <%s> closed by </%s>", cur.name, fdlXMLName(t.Name))
			}
			cur, depth = cur.parent, depth-1
		case xml.CharData:
			if last := len(cur.children) - 1; last >= 0 && cur.children[last].kind == fdlXMLText {
				cur.children[last].text += string(t)
				continue
			}
			add(&fdlNode{kind: fdlXMLText, text: string(t)})
		case xml.Comment:
			add(&fdlNode{kind: fdlXMLComment, text: string(t)})
		case xml.ProcInst:
			add(&fdlNode{kind: fdlXMLProcInst, name: t.Target, text: string(t.Inst)})
		case xml.Directive:
			add(&fdlNode{kind: fdlXMLDirective, text: string(t)})
		}
	}
	if nodes > fdlXMLMaxNodes {
		return nil, fmt.Errorf("more than %d nodes", fdlXMLMaxNodes)
	}
	if cur != doc {
		return nil, fmt.Errorf("element <%s> is not closed", cur.name)
	}
	if doc.root() == nil {
		return nil, errors.New("no root element")
	}
	return doc, nil
}

// root returns a document's root element.
func (n *fdlNode) root() *fdlNode {
	for _, c := range n.children {
		if c.kind == fdlXMLElement {
			return c
		}
	}
	return nil
}

// document returns the document n is part of, or its topmost node.
func (n *fdlNode) document() *fdlNode {
	for n.parent != nil {
		n = n.parent
	}
	return n
}

// text returns the text of n and its descendants.
func (n *fdlNode) textContent() string {
	if n.kind == fdlXMLText {
		return n.text
	}
	var b strings.Builder
	var walk func(*fdlNode)
	walk = func(n *fdlNode) {
		for _, c := range n.children {
			switch c.kind {
			case fdlXMLText:
				b.WriteString(c.text)
			case fdlXMLElement:
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

func fdlNameMatches(seg, name string) bool {
	if seg == "*" || seg == name {
		return true
	}
	_, local, ok := strings.Cut(name, ":")
	return ok && !strings.Contains(seg, ":") && seg == local
}

// find returns the elements at path from n (see the file comment), at most
// one unless all.
func (n *fdlNode) find(path string, all bool) []*fdlNode {
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
		from = n.document()
	}
	var out []*fdlNode
	var walk func(n *fdlNode, segs []string) bool
	walk = func(n *fdlNode, segs []string) bool {
		for _, c := range n.children {
			if c.kind != fdlXMLElement || !fdlNameMatches(segs[0], c.name) {
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
	if len(out) == 0 && from.kind == fdlXMLElement && fdlNameMatches(segs[0], from.name) {
		// The path names the node itself first: CONFIG/meta from <CONFIG>.
		if len(segs) == 1 {
			return []*fdlNode{from}
		}
		walk(from, segs[1:])
	}
	return out
}

// addElement appends a new element to n.
func (n *fdlNode) addElement(name, text string, hasText bool) (*fdlNode, error) {
	if !fdlValidXMLName(name) {
		return nil, fmt.Errorf("%q is not an XML element name", name)
	}
	switch n.kind {
	case fdlXMLDocument:
		if n.root() != nil {
			return nil, errors.New("the document has a root element already")
		}
	case fdlXMLElement:
	default:
		return nil, errors.New("only elements and documents have children")
	}
	c := &fdlNode{kind: fdlXMLElement, name: name, parent: n}
	if hasText {
		c.children = []*fdlNode{{kind: fdlXMLText, text: text, parent: c}}
	}
	n.children = append(n.children, c)
	return c, nil
}

func fdlValidXMLName(name string) bool {
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
func (n *fdlNode) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

var (
	fdlXMLTextEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	fdlXMLAttrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;",
		"\n", "&#xA;", "\r", "&#xD;", "\t", "&#x9;")
)

func (n *fdlNode) write(b *strings.Builder) {
	switch n.kind {
	case fdlXMLDocument:
		for _, c := range n.children {
			c.write(b)
		}
	case fdlXMLElement:
		b.WriteString("<" + n.name)
		for _, a := range n.attrs {
			b.WriteString(" " + a.name + `="`)
			fdlXMLAttrEscaper.WriteString(b, a.value)
			b.WriteByte('"')
		}
		if len(n.children) == 0 {
			b.WriteString("/>")
			return
		}
		b.WriteByte('>')
		for _, c := range n.children {
			c.write(b)
		}
		b.WriteString("</" + n.name + ">")
	case fdlXMLText:
		fdlXMLTextEscaper.WriteString(b, n.text)
	case fdlXMLComment:
		b.WriteString("<!--" + n.text + "-->")
	case fdlXMLProcInst:
		b.WriteString("<?" + n.name)
		if n.text != "" {
			b.WriteString(" " + n.text)
		}
		b.WriteString("?>")
	case fdlXMLDirective:
		b.WriteString("<!" + n.text + ">")
	}
}

func (s *fdlState) newNode(n *fdlNode) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = n
	ud.Metatable = s.nodeMT
	return ud
}

// nodeArg returns the node of argument i.
func fdlNodeArg(L *lua.LState, i int) *fdlNode {
	if ud, ok := fdlArg(L, i).(*lua.LUserData); ok {
		if n, ok := ud.Value.(*fdlNode); ok {
			return n
		}
	}
	L.ArgError(i, "want an XML node")
	return nil
}

func (s *fdlState) nodeToString(L *lua.LState) int {
	return s.pushXML(L, fdlNodeArg(L, 1))
}

func (s *fdlState) pushXML(L *lua.LState, n *fdlNode) int {
	out := n.String()
	if len(out) > s.sh.maxBytes {
		s.vm.tooLong(L, "XML document", float64(len(out)))
	}
	L.Push(lua.LString(out))
	return 1
}

// fdlNodeFuncs are the functions on nodes, each taking the node at
// argument i and its other arguments after it.
func (s *fdlState) nodeFuncs() map[string]func(L *lua.LState, i int) int {
	return map[string]func(L *lua.LState, i int) int{
		"getName": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			switch n.kind {
			case fdlXMLDocument:
				L.Push(lua.LString("#document"))
			case fdlXMLText:
				L.Push(lua.LString("#text"))
			default:
				L.Push(lua.LString(n.name))
			}
			return 1
		},
		"getText": func(L *lua.LState, i int) int {
			L.Push(lua.LString(fdlNodeArg(L, i).textContent()))
			return 1
		},
		"setText": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			if n.kind != fdlXMLElement {
				L.ArgError(i, "only elements have text to set")
			}
			text, _ := s.str(L, i+1)
			n.children = []*fdlNode{{kind: fdlXMLText, text: text, parent: n}}
			return 0
		},
		"getAttribute": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			name := L.CheckString(i + 1)
			for _, a := range n.attrs {
				if a.name == name {
					L.Push(lua.LString(a.value))
					return 1
				}
			}
			L.Push(lua.LNil)
			return 1
		},
		"setAttribute": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			name := L.CheckString(i + 1)
			value, _ := s.str(L, i+2)
			if n.kind != fdlXMLElement || !fdlValidXMLName(name) {
				L.ArgError(i+1, "want an element and an attribute name")
			}
			for j := range n.attrs {
				if n.attrs[j].name == name {
					n.attrs[j].value = value
					return 0
				}
			}
			n.attrs = append(n.attrs, fdlAttr{name, value})
			return 0
		},
		"removeAttribute": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			name := L.CheckString(i + 1)
			n.attrs = slices.DeleteFunc(n.attrs, func(a fdlAttr) bool { return a.name == name })
			return 0
		},
		"getChildren": func(L *lua.LState, i int) int {
			l := s.newList()
			for _, c := range fdlNodeArg(L, i).children {
				if c.kind == fdlXMLElement {
					l.Append(s.newNode(c))
				}
			}
			L.Push(l)
			return 1
		},
		"getParent": func(L *lua.LState, i int) int {
			if p := fdlNodeArg(L, i).parent; p != nil {
				L.Push(s.newNode(p))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		},
		"findNode": func(L *lua.LState, i int) int {
			found := fdlNodeArg(L, i).find(L.CheckString(i+1), false)
			if len(found) == 0 {
				L.Push(lua.LNil)
			} else {
				L.Push(s.newNode(found[0]))
			}
			return 1
		},
		"findNodes": func(L *lua.LState, i int) int {
			l := s.newList()
			for _, n := range fdlNodeArg(L, i).find(L.CheckString(i+1), true) {
				l.Append(s.newNode(n))
			}
			L.Push(l)
			return 1
		},
		// addNode(parent, name [, text]) -> the new element
		"addNode": func(L *lua.LState, i int) int {
			text, hasText := s.str(L, i+2)
			c, err := fdlNodeArg(L, i).addElement(L.CheckString(i+1), text, hasText)
			if err != nil {
				L.RaiseError("addNode: %v", err)
			}
			L.Push(s.newNode(c))
			return 1
		},
		// addTextNode(parent, name, text) -> the new element, holding text
		"addTextNode": func(L *lua.LState, i int) int {
			text, _ := s.str(L, i+2)
			c, err := fdlNodeArg(L, i).addElement(L.CheckString(i+1), text, true)
			if err != nil {
				L.RaiseError("addTextNode: %v", err)
			}
			L.Push(s.newNode(c))
			return 1
		},
		"removeNode": func(L *lua.LState, i int) int {
			n := fdlNodeArg(L, i)
			if p := n.parent; p != nil {
				p.children = slices.DeleteFunc(p.children, func(c *fdlNode) bool { return c == n })
				n.parent = nil
			}
			return 0
		},
		"toString": func(L *lua.LState, i int) int {
			return s.pushXML(L, fdlNodeArg(L, i))
		},
	}
}

// fdlNodeMethods are the methods of nodes: node:findNode(path), ...
func fdlNodeMethods(s *fdlState) map[string]lua.LGFunction {
	m := map[string]lua.LGFunction{}
	for name, fn := range s.nodeFuncs() {
		m[name] = func(L *lua.LState) int { return fn(L, 1) }
	}
	return m
}

// xmlMethods are the helper's functions: the node functions taking the
// node first, and parse and createDocument.
func (s *fdlState) xmlMethods() map[string]lua.LGFunction {
	m := map[string]lua.LGFunction{
		// parse(string) -> document | nil, err
		"parse": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLXMLHelper")
			doc, err := fdlParseXML(L.CheckString(base))
			if err != nil {
				return luaFailure(L, "not an XML document: "+err.Error())
			}
			L.Push(s.newNode(doc))
			return 1
		},
		// createDocument(rootName) -> a document with an empty root element
		"createDocument": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLXMLHelper")
			doc := &fdlNode{kind: fdlXMLDocument}
			if _, err := doc.addElement(L.CheckString(base), "", false); err != nil {
				L.ArgError(base, err.Error())
			}
			L.Push(s.newNode(doc))
			return 1
		},
	}
	for name, fn := range s.nodeFuncs() {
		m[name] = func(L *lua.LState) int { return fn(L, s.helperBase(L, "FDLXMLHelper")) }
	}
	return m
}
