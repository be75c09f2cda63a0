// Package xmltree is an XML document as a tree of nodes that can be found,
// changed and written back: the model behind the Lua kind's FDLXMLHelper.
//
// [Parse] keeps comments, processing instructions, directives and
// whitespace, and bounds the nesting ([MaxDepth]) and the number of nodes
// ([MaxNodes]) it reads. [Node.Find] follows element names separated by /
// from a node's children (from the root element for a document, or when the
// path starts with /); * matches any element, and a name without a prefix
// matches an element of that local name in any namespace.
// [Node.String] writes a node as XML.
//
// A tree is not safe for concurrent use.
package xmltree
