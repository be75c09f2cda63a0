package lua

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/xmltree"
)

// FDLXMLHelper: an XML document as a tree of nodes a script can find,
// change and write back, for the server metadata of
// PRE_SERVER_METADATA_UPDATE, kept as an [xmltree.Node]. It is read with
// encoding/xml's tokenizer, which expands no external entity and reads no
// DTD.
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

func (s *compatLayer) newNode(n *xmltree.Node) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = n
	ud.Metatable = s.nodeMT
	return ud
}

// nodeArg returns the node of argument i.
func nodeArg(L *lua.LState, i int) *xmltree.Node {
	if ud, ok := argAt(L, i).(*lua.LUserData); ok {
		if n, ok := ud.Value.(*xmltree.Node); ok {
			return n
		}
	}
	L.ArgError(i, "want an XML node")
	return nil
}

func (s *compatLayer) nodeToString(L *lua.LState) int {
	return s.pushXML(L, nodeArg(L, 1))
}

func (s *compatLayer) pushXML(L *lua.LState, n *xmltree.Node) int {
	out := n.String()
	if len(out) > s.sh.maxBytes {
		s.vm.tooLong(L, "XML document", float64(len(out)))
	}
	L.Push(lua.LString(out))
	return 1
}

// fdlNodeFuncs are the functions on nodes, each taking the node at
// argument i and its other arguments after it.
func (s *compatLayer) nodeFuncs() map[string]func(L *lua.LState, i int) int {
	return map[string]func(L *lua.LState, i int) int{
		"getName": func(L *lua.LState, i int) int {
			n := nodeArg(L, i)
			switch n.Kind {
			case xmltree.Document:
				L.Push(lua.LString("#document"))
			case xmltree.Text:
				L.Push(lua.LString("#text"))
			default:
				L.Push(lua.LString(n.Name))
			}
			return 1
		},
		"getText": func(L *lua.LState, i int) int {
			L.Push(lua.LString(nodeArg(L, i).TextContent()))
			return 1
		},
		"setText": func(L *lua.LState, i int) int {
			n := nodeArg(L, i)
			if n.Kind != xmltree.Element {
				L.ArgError(i, "only elements have text to set")
			}
			text, _ := s.str(L, i+1)
			n.SetText(text)
			return 0
		},
		"getAttribute": func(L *lua.LState, i int) int {
			if v, ok := nodeArg(L, i).Attr(L.CheckString(i + 1)); ok {
				L.Push(lua.LString(v))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		},
		"setAttribute": func(L *lua.LState, i int) int {
			n := nodeArg(L, i)
			name := L.CheckString(i + 1)
			value, _ := s.str(L, i+2)
			if err := n.SetAttr(name, value); err != nil {
				L.ArgError(i+1, err.Error())
			}
			return 0
		},
		"removeAttribute": func(L *lua.LState, i int) int {
			nodeArg(L, i).RemoveAttr(L.CheckString(i + 1))
			return 0
		},
		"getChildren": func(L *lua.LState, i int) int {
			l := s.newList()
			for _, c := range nodeArg(L, i).Children {
				if c.Kind == xmltree.Element {
					l.Append(s.newNode(c))
				}
			}
			L.Push(l)
			return 1
		},
		"getParent": func(L *lua.LState, i int) int {
			if p := nodeArg(L, i).Parent; p != nil {
				L.Push(s.newNode(p))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		},
		"findNode": func(L *lua.LState, i int) int {
			found := nodeArg(L, i).Find(L.CheckString(i+1), false)
			if len(found) == 0 {
				L.Push(lua.LNil)
			} else {
				L.Push(s.newNode(found[0]))
			}
			return 1
		},
		"findNodes": func(L *lua.LState, i int) int {
			l := s.newList()
			for _, n := range nodeArg(L, i).Find(L.CheckString(i+1), true) {
				l.Append(s.newNode(n))
			}
			L.Push(l)
			return 1
		},
		// addNode(parent, name [, text]) -> the new element
		"addNode": func(L *lua.LState, i int) int {
			text, hasText := s.str(L, i+2)
			c, err := nodeArg(L, i).AddElement(L.CheckString(i+1), text, hasText)
			if err != nil {
				L.RaiseError("addNode: %v", err)
			}
			L.Push(s.newNode(c))
			return 1
		},
		// addTextNode(parent, name, text) -> the new element, holding text
		"addTextNode": func(L *lua.LState, i int) int {
			text, _ := s.str(L, i+2)
			c, err := nodeArg(L, i).AddElement(L.CheckString(i+1), text, true)
			if err != nil {
				L.RaiseError("addTextNode: %v", err)
			}
			L.Push(s.newNode(c))
			return 1
		},
		"removeNode": func(L *lua.LState, i int) int {
			nodeArg(L, i).Remove()
			return 0
		},
		"toString": func(L *lua.LState, i int) int {
			return s.pushXML(L, nodeArg(L, i))
		},
	}
}

// nodeMethods are the methods of nodes: node:findNode(path), ...
func nodeMethods(s *compatLayer) map[string]lua.LGFunction {
	m := map[string]lua.LGFunction{}
	for name, fn := range s.nodeFuncs() {
		m[name] = func(L *lua.LState) int { return fn(L, 1) }
	}
	return m
}

// xmlMethods are the helper's functions: the node functions taking the
// node first, and parse and createDocument.
func (s *compatLayer) xmlMethods() map[string]lua.LGFunction {
	m := map[string]lua.LGFunction{
		// parse(string) -> document | nil, err
		"parse": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLXMLHelper")
			doc, err := xmltree.Parse(L.CheckString(base))
			if err != nil {
				return failure(L, "not an XML document: "+err.Error())
			}
			L.Push(s.newNode(doc))
			return 1
		},
		// createDocument(rootName) -> a document with an empty root element
		"createDocument": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLXMLHelper")
			doc := &xmltree.Node{Kind: xmltree.Document}
			if _, err := doc.AddElement(L.CheckString(base), "", false); err != nil {
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
