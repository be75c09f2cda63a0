package lua

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Names the compiler gives the guarded concatenation. Neither is a Lua
// identifier, so no script can name them: the global is set in each call's
// environment, copied into a local by the first statement of the chunk and
// cleared by the second, so that scripts only ever reach it as an upvalue.
const (
	concatGlobal = "(triggerbus concat)"
	concatLocal  = "(concat)"
)

// compile parses and compiles a script. Every `a .. b .. c` becomes a
// call of the guarded concatenation, which refuses to build a string larger
// than the string limit: a loop of s = s .. s would otherwise reach
// gigabytes in a few instructions, long before any deadline.
func compile(name string, src []byte) (*lua.FunctionProto, error) {
	// Before parsing: gopher-lua fails on a "\z" that ends a line with
	// "unterminated string", which hides the reason.
	if line, msg := escapeError(src); line > 0 {
		return nil, &Error{File: name, Line: line, Message: msg}
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		var perr *parse.Error
		if errors.As(err, &perr) {
			msg := perr.Message
			if perr.Token != "" {
				msg = fmt.Sprintf("%s near '%s'", perr.Message, perr.Token)
			}
			line := perr.Pos.Line
			if line < 0 {
				line, msg = 0, msg+" at the end of the file"
			}
			return nil, &Error{File: name, Line: line, Message: msg}
		}
		return nil, &Error{File: name, Message: strings.TrimSpace(err.Error())}
	}
	var rw rewriter
	chunk = rw.stmts(chunk)
	if rw.envLine > 0 {
		return nil, &Error{File: name, Line: rw.envLine, Message: envError}
	}
	head := []ast.Stmt{
		&ast.LocalAssignStmt{Names: []string{concatLocal}, Exprs: []ast.Expr{&ast.IdentExpr{Value: concatGlobal}}},
		&ast.AssignStmt{Lhs: []ast.Expr{&ast.IdentExpr{Value: concatGlobal}}, Rhs: []ast.Expr{&ast.NilExpr{}}},
	}
	proto, err := lua.Compile(append(head, chunk...), name)
	if err != nil {
		var cerr *lua.CompileError
		if errors.As(err, &cerr) {
			return nil, &Error{File: name, Line: cerr.Line, Message: cerr.Message}
		}
		return nil, &Error{File: name, Message: err.Error()}
	}
	// The chunk is compiled as a vararg function, and gopher-lua builds
	// the Lua 5.0 arg table of such a function on every call, though no
	// name of a chunk can refer to it (arg is a local of nested vararg
	// functions only). The chunk runs at every call of an entry point; the
	// table cost 2.6 KB each time.
	proto.IsVarArg &^= lua.VarArgNeedsArg
	return proto, nil
}

// rewriter replaces string concatenation in a chunk's syntax tree, and
// notes the first line that names _ENV (see lua52.go).
type rewriter struct {
	envLine int
}

// names notes the first of names that is _ENV, declared at line.
func (rw *rewriter) names(line int, names ...string) {
	if rw.envLine == 0 && slices.Contains(names, envName) {
		rw.envLine = line
	}
}

func (rw *rewriter) stmts(list []ast.Stmt) []ast.Stmt {
	for i, s := range list {
		list[i] = rw.stmt(s)
	}
	return list
}

func (rw *rewriter) exprs(list []ast.Expr) []ast.Expr {
	for i, e := range list {
		list[i] = rw.expr(e)
	}
	return list
}

func (rw *rewriter) stmt(s ast.Stmt) ast.Stmt {
	switch s := s.(type) {
	case *ast.AssignStmt:
		rw.exprs(s.Lhs)
		rw.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		rw.names(s.Line(), s.Names...)
		rw.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = rw.expr(s.Expr)
	case *ast.DoBlockStmt:
		rw.stmts(s.Stmts)
	case *ast.WhileStmt:
		s.Condition = rw.expr(s.Condition)
		rw.stmts(s.Stmts)
	case *ast.RepeatStmt:
		s.Condition = rw.expr(s.Condition)
		rw.stmts(s.Stmts)
	case *ast.IfStmt:
		s.Condition = rw.expr(s.Condition)
		rw.stmts(s.Then)
		rw.stmts(s.Else)
	case *ast.NumberForStmt:
		rw.names(s.Line(), s.Name)
		s.Init = rw.expr(s.Init)
		s.Limit = rw.expr(s.Limit)
		s.Step = rw.expr(s.Step)
		rw.stmts(s.Stmts)
	case *ast.GenericForStmt:
		rw.names(s.Line(), s.Names...)
		rw.exprs(s.Exprs)
		rw.stmts(s.Stmts)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			s.Name.Func = rw.expr(s.Name.Func)
			s.Name.Receiver = rw.expr(s.Name.Receiver)
		}
		rw.expr(s.Func)
	case *ast.ReturnStmt:
		rw.exprs(s.Exprs)
	}
	return s
}

func (rw *rewriter) expr(e ast.Expr) ast.Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *ast.AttrGetExpr:
		e.Object = rw.expr(e.Object)
		e.Key = rw.expr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			f.Key = rw.expr(f.Key)
			f.Value = rw.expr(f.Value)
		}
	case *ast.FuncCallExpr:
		e.Func = rw.expr(e.Func)
		e.Receiver = rw.expr(e.Receiver)
		rw.exprs(e.Args)
	case *ast.LogicalOpExpr:
		e.Lhs = rw.expr(e.Lhs)
		e.Rhs = rw.expr(e.Rhs)
	case *ast.RelationalOpExpr:
		e.Lhs = rw.expr(e.Lhs)
		e.Rhs = rw.expr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		e.Lhs = rw.expr(e.Lhs)
		e.Rhs = rw.expr(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		e.Expr = rw.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = rw.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		e.Expr = rw.expr(e.Expr)
	case *ast.IdentExpr:
		rw.names(e.Line(), e.Value)
	case *ast.FunctionExpr:
		if e.ParList != nil {
			rw.names(e.Line(), e.ParList.Names...)
		}
		rw.stmts(e.Stmts)
	case *ast.StringConcatOpExpr:
		// a .. b .. c is right-associative: a .. (b .. c). One call takes
		// the whole chain, as the VM's own CONCAT does.
		var args []ast.Expr
		var cur ast.Expr = e
		for {
			c, ok := cur.(*ast.StringConcatOpExpr)
			if !ok {
				break
			}
			args = append(args, c.Lhs)
			cur = c.Rhs
		}
		args = append(args, cur)
		for i, a := range args {
			a = rw.expr(a)
			// Each operand is one value, as in the VM's CONCAT: a call or
			// ... as the last argument would otherwise pass all its values.
			switch a := a.(type) {
			case *ast.FuncCallExpr:
				a.AdjustRet = true
			case *ast.Comma3Expr:
				a.AdjustRet = true
			}
			args[i] = a
		}
		call := &ast.FuncCallExpr{Func: &ast.IdentExpr{Value: concatLocal}, Args: args}
		call.Func.SetLine(e.Line())
		call.Func.SetLastLine(e.LastLine())
		call.SetLine(e.Line())
		call.SetLastLine(e.LastLine())
		return call
	}
	return e
}
