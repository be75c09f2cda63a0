package lua

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// The memory limit of a call. gopher-lua has no allocation hook, but its VM
// asks the state's context for Done before every instruction: the context a
// call's state runs under (callContext) counts those asks, and every
// allocCheckEvery instructions reads how much the process has allocated.
// Once that has grown by the call's room since the last measure, it
// measures what the call holds (memSizer), the way a garbage collector
// would: everything reachable from the call's globals and from the locals
// and upvalues of the functions on its stack. A call that holds more than
// its limit ends as if its context had, with an error wrapping
// ErrMemoryLimit, which pcall cannot catch either.
//
// The counter is first read at the first of those checks (or at the first
// charge), not when the call starts: most calls end before their 4,096th
// instruction, and then never pay for a read. What the call allocated
// before that read is not counted towards the room, and is found by the
// measure all the same: it is what the call holds.
//
// The process's allocations include those of other calls, which only makes
// measures come sooner. Builtins that make large strings or tables charge
// them, so that the next instruction reads the counter at once.

// ErrMemoryLimit is wrapped by the error of a Lua call that held more memory
// than [Options.MaxMemory].
var ErrMemoryLimit = errors.New("handlers: lua memory limit exceeded")

// DefaultMaxMemory is what one call may hold when [Options.MaxMemory] is 0.
const DefaultMaxMemory = 64 << 20

const (
	// allocCheckEvery is how many instructions run between two reads
	// of the process's allocation counter (a power of two).
	allocCheckEvery = 1 << 12
	// ctxCheckEvery is how many instructions run between two looks at
	// the call's context (a power of two, at most allocCheckEvery).
	ctxCheckEvery = 1 << 8
	// decodeFactor is how many bytes of tables decoding a byte of JSON
	// is charged for.
	decodeFactor = 8
	// minMeasureRoom is the least allocation between two measures.
	minMeasureRoom = 1 << 20
	// Estimated sizes of gopher-lua's values on a 64-bit host.
	tableBytes     = 128 // LTable and its maps' headers
	slotBytes      = 16  // an LValue in a table's array part
	hashEntryBytes = 96  // an entry of a table's hash part, keys and index included
	functionBytes  = 64
	upvalueBytes   = 40
	userDataBytes  = 64
	stringBytes    = 16 // a string's header
	numberBytes    = 8  // a boxed number
	// shareMin is the length from which strings are counted once however
	// many tables hold them.
	shareMin = 64
)

// memoryError is the error of a call over its memory limit.
type memoryError struct{ limit, held int64 }

func (e *memoryError) Error() string {
	return fmt.Sprintf("memory limit of %s exceeded: the call holds about %s", formatSize(e.limit), formatSize(e.held))
}

func (e *memoryError) Unwrap() error { return ErrMemoryLimit }

// formatSize writes n bytes for people.
func formatSize(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// callContext is the context a call's state runs under: the call's context,
// ended early when the call passes its memory limit. Only the state's
// goroutine uses it (L.Context()); the host API gets the call's own.
//
// The VM asks for Done before every instruction. Rather than hand it the
// call's own Done channel, which would start the timer of a deadline
// (handlers.WithLazyDeadline) on every call, Done asks the call's context
// for Err every ctxCheckEvery instructions and, once that is set, returns
// a closed channel: a call that ends, by its deadline or by a cancel, stops
// within that many instructions, and a call costs no timer unless a host
// function waits on its context.
type callContext struct {
	context.Context
	vm    *vmState
	ticks uint
	// room is what the process may allocate before the next measure, from
	// base, its allocation counter at the last measure (or at the first
	// check: based says it has been read); charged is what builtins
	// charged since.
	room, base, charged uint64
	based               bool
	allocs              []metrics.Sample
	over                error // the call passed its limit
	failed              error // a field of p did not decode (lazyEvent)
	ended               error // the call's context ended (Err)
}

// stopped is the Done channel of a call that passed its limit or whose
// context ended.
var stopped = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func newCallContext(ctx context.Context, vm *vmState) *callContext {
	c := &callContext{Context: ctx, vm: vm, allocs: vm.allocs}
	c.room = uint64(max(vm.opts.MaxMemory/2, minMeasureRoom))
	return c
}

// allocated returns the bytes the process has allocated so far.
func (c *callContext) allocated() uint64 {
	metrics.Read(c.allocs)
	if c.allocs[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return c.allocs[0].Value.Uint64()
}

// Done is asked before every instruction of the VM. While the call runs it
// is nil, which a select never picks.
func (c *callContext) Done() <-chan struct{} {
	if c.ticks++; c.ticks%ctxCheckEvery == 0 && c.ended == nil {
		c.ended = c.Context.Err()
	}
	if c.ticks%allocCheckEvery == 0 && c.over == nil {
		now := c.allocated()
		if !c.based {
			c.base, c.based = now, true
		}
		if now-c.base >= c.room || c.charged >= c.room {
			c.measure()
		}
	}
	if c.over != nil || c.failed != nil || c.ended != nil {
		return stopped
	}
	return nil
}

func (c *callContext) Err() error {
	if c.over != nil {
		return c.over
	}
	if c.failed != nil {
		return c.failed
	}
	if c.ended != nil {
		return c.ended
	}
	return c.Context.Err()
}

// charge counts n bytes a builtin allocated: the next instruction reads
// the allocation counter.
func (c *callContext) charge(n int) {
	c.charged += uint64(max(n, 0))
	c.ticks = allocCheckEvery - 1
}

// measure measures what the call holds and ends it when that is over its
// limit; otherwise the next measure comes after half of what is left, or of
// what the call holds, whichever is more, so that measuring costs about as
// much as allocating and a call passes its limit by at most a half.
func (c *callContext) measure() {
	limit := c.vm.opts.MaxMemory
	held := c.vm.held(limit)
	if held > limit {
		c.over = &memoryError{limit: limit, held: held}
		c.vm.dirty = true
		return
	}
	// From after the measure, which allocates too.
	c.base, c.charged = c.allocated(), 0
	c.room = uint64(max((limit-held)/2, held/2, minMeasureRoom))
}

// charge counts n bytes a builtin allocated for the current call.
func (vm *vmState) charge(n int) {
	if vm.callCtx != nil {
		vm.callCtx.charge(n)
	}
}

// held estimates the bytes the current call holds, stopping once it passes
// limit.
func (vm *vmState) held(limit int64) int64 {
	z := &vm.sizer
	z.reset(limit)
	defer z.reset(0)
	z.add(vm.callEnv)
	L := vm.L
	// Every frame's registers: named locals and temporaries. GetStack
	// counts tail calls as levels, so a frame that made many maps later
	// levels to the bottom frame again; the bound keeps that finite, and
	// what a level shows twice is counted once.
	for level := 0; level <= vm.opts.CallStackSize && z.size <= limit; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if fn, err := L.GetInfo("f", dbg, lua.LNil); err == nil {
			z.add(fn)
		}
		for n := 1; ; n++ {
			name, v := L.GetLocal(dbg, n)
			if name == "" {
				break
			}
			z.add(v)
		}
		z.run()
	}
	z.run()
	return z.size
}

// memSizer adds up the estimated sizes of Lua values and of what they
// reach, each table, function and long string once.
type memSizer struct {
	limit int64
	size  int64
	seen  map[lua.LValue]struct{}
	strs  map[*byte]int // long strings by their bytes: the longest length seen
	todo  []lua.LValue
}

// reset readies z for a measure up to limit, keeping its maps' room.
func (z *memSizer) reset(limit int64) {
	if z.seen == nil {
		z.seen, z.strs = map[lua.LValue]struct{}{}, map[*byte]int{}
	}
	clear(z.seen)
	clear(z.strs)
	clear(z.todo)
	z.limit, z.size, z.todo = limit, 0, z.todo[:0]
}

func (z *memSizer) add(v lua.LValue) {
	switch v := v.(type) {
	case lua.LString:
		n := len(v)
		if n >= shareMin {
			// Strings are immutable and shared, not copied, when a
			// script stores one in many places: count their bytes once.
			p := unsafe.StringData(string(v))
			old, ok := z.strs[p]
			if ok && old >= n {
				return
			}
			z.strs[p] = n
			if ok {
				z.size += int64(n - old)
				return
			}
		}
		z.size += int64(n) + stringBytes
	case lua.LNumber:
		z.size += numberBytes
	case *lua.LTable, *lua.LFunction, *lua.LUserData:
		if v == nil {
			return
		}
		if _, ok := z.seen[v]; ok {
			return
		}
		z.seen[v] = struct{}{}
		z.todo = append(z.todo, v)
	}
}

// run sizes what add queued, until the size passes the limit.
func (z *memSizer) run() {
	for len(z.todo) > 0 && z.size <= z.limit {
		v := z.todo[len(z.todo)-1]
		z.todo = z.todo[:len(z.todo)-1]
		switch v := v.(type) {
		case *lua.LTable:
			z.table(v)
		case *lua.LFunction:
			z.size += functionBytes + int64(len(v.Upvalues))*upvalueBytes
			for _, uv := range v.Upvalues {
				z.add(uv.Value())
			}
			if v.Env != nil {
				z.add(v.Env)
			}
		case *lua.LUserData:
			z.size += userDataBytes
			z.add(v.Metatable)
			if v.Env != nil {
				z.add(v.Env)
			}
		}
	}
}

// table sizes t: its array part reaches up to its largest integer key (a
// table indexed by a large integer gets a dense array up to it), the rest
// is hash entries.
func (z *memSizer) table(t *lua.LTable) {
	z.size += tableBytes
	top, hashed := 0, 0
	t.ForEach(func(k, v lua.LValue) {
		if n, ok := k.(lua.LNumber); ok && n >= 1 && n < lua.LNumber(lua.MaxArrayIndex) && n == lua.LNumber(int(n)) {
			top = max(top, int(n))
		} else {
			hashed++
			z.add(k)
		}
		z.add(v)
	})
	z.size += int64(top)*slotBytes + int64(hashed)*hashEntryBytes
	z.add(t.Metatable)
}
