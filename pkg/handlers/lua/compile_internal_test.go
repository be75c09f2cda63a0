package lua

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestCompileChunkHasNoArgTable: a compiled chunk does not ask gopher-lua
// for the arg table of vararg functions (it runs at every call), and a
// nested vararg function that does not use ... still does.
func TestCompileChunkHasNoArgTable(t *testing.T) {
	proto, err := compile("chunk.lua", []byte("local function f(...) return arg.n end\nx = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if proto.IsVarArg&lua.VarArgIsVarArg == 0 || proto.IsVarArg&lua.VarArgNeedsArg != 0 {
		t.Errorf("chunk IsVarArg = %b, want vararg without the arg table", proto.IsVarArg)
	}
	if len(proto.FunctionPrototypes) != 1 {
		t.Fatalf("%d nested functions, want 1", len(proto.FunctionPrototypes))
	}
	if f := proto.FunctionPrototypes[0]; f.IsVarArg&lua.VarArgNeedsArg == 0 {
		t.Errorf("nested IsVarArg = %b, want the arg table", f.IsVarArg)
	}
}
