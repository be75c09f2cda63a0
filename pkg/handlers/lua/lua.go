package lua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Defaults of [Options].
const (
	defaultMaxStringBytes  = 16 << 20
	defaultCallStackSize   = 200
	defaultRegistrySize    = 4 << 10
	defaultRegistryMaxSize = 64 << 10
	defaultLoadTimeout     = 5 * time.Second
	registryGrowStep       = 4 << 10

	// closeWait bounds how long Close waits for calls still running.
	closeWait = time.Second
)

// ErrClosed is returned by [Handler.Handle] after [Handler.Close].
var ErrClosed = errors.New("handlers: lua handler is closed")

// Options configures the Lua handlers of [LoadScript] and [LoadScripts].
// The zero value is ready to use: every zero field takes its default.
type Options struct {
	// MaxStringBytes caps the strings a script can build with string.rep,
	// string.format, string.gsub, table.concat, the .. operator and
	// trigger.json.encode; 0 means 16 MiB.
	MaxStringBytes int
	// PoolSize is how many idle Lua states each entry point keeps for
	// reuse; 0 means runtime.GOMAXPROCS(0)*2. More concurrent calls than
	// that still run, on states made for them and closed afterwards.
	PoolSize int
	// Logger receives trigger.log, print and syslog of calls made outside a
	// worker's call (no [handlers.Call] in the context; a worker's call logs
	// to Call.Logger), with the attributes of [handlers.CallLogger], of
	// scripts' top-level code while they load (with the function's ref), and
	// the loader's debug messages; nil discards them.
	Logger *slog.Logger
	// CallStackSize is the depth of nested Lua calls a script may reach
	// before it fails with a stack overflow; 0 means 200.
	CallStackSize int
	// RegistrySize is the initial number of slots of a state's value
	// stack; 0 means 4096.
	RegistrySize int
	// RegistryMaxSize is the most slots the value stack may grow to (deep
	// recursion, unpack of a huge table) before the script fails with a
	// registry overflow; 0 means 65536 (1 MiB), or RegistrySize if larger.
	RegistryMaxSize int
	// LoadTimeout bounds loading one script file: running its top-level
	// code, register() and the description calls; 0 means 5s.
	LoadTimeout time.Duration
	// MaxMemory caps the memory one call may hold: an estimate of what is
	// reachable from its globals and from the locals and upvalues of the
	// functions it is running (tables, strings, functions), measured as
	// it allocates. A call over it fails with an error wrapping
	// [ErrMemoryLimit], which pcall cannot catch; it may pass the cap by
	// about a half before it is stopped. 0 means 64 MiB.
	MaxMemory int64

	// APIPrefix is the subject prefix of the orchestrator API that the FDL
	// layer's adminAPI and userAPI call: <prefix>.admin.<method> and
	// <prefix>.user.<method> (see docs/fdl.md); "" means "fco.api".
	APIPrefix string
	// APITimeout bounds each adminAPI/userAPI call; 0 means 10s. A sooner
	// deadline of the call's context wins.
	APITimeout time.Duration
	// HTTP limits the FDL layer's simplehttp; the zero value takes the
	// defaults of [HTTPOptions].
	HTTP HTTPOptions
	// DataStore keeps the private data map of each function that the FDL
	// layer's dataStore reads and replaces; nil makes dataStore calls fail
	// with an error that says so.
	DataStore DataStore
	// Mail sends the messages of the FDL layer's FDLEmailHelper (the
	// worker's is an internal/mailer relay); nil makes them fail with an
	// error that says no SMTP relay is configured.
	Mail Mailer
	// Messages is the catalogue of the FDL layer's translate.string: text
	// by key. A key it lacks translates to itself.
	Messages map[string]string

	// extensions add globals to every call's environment. setDefaults adds
	// the FDL compatibility layer (fdl.go).
	extensions []extension
}

// Mailer sends the mail of FDLEmailHelper. *mailer.Mailer, the worker's
// SMTP relay, is one; `trigger-worker test` records the mail instead.
type Mailer interface {
	Send(ctx context.Context, m mailer.Message) error
}

// extension adds to the environment scripts run in. The FDL
// compatibility layer is one.
type extension struct {
	// name names the extension in errors.
	name string
	// open is called once for each new Lua state with the state and the
	// prototype of its global table, and returns the function called at
	// the start of every call on that state (nil: none), which may keep
	// what it needs of the state. Each call sees what open adds through the
	// call's own global table (see envProto): a table it adds becomes a
	// fresh proxy in every call that uses it, so its metatable is not kept; other values
	// are shared by all calls and must not be mutable from Lua (a
	// userdata's metatable needs a __metatable field).
	open func(vm *vmState, globals *lua.LTable) (prepareFunc, error)
}

// prepareFunc is called at the start of every call on the state its
// extension opened, after the call's environment env is built and before
// the chunk runs; p is nil outside entry-point calls (loading,
// descriptions).
type prepareFunc func(ctx context.Context, env, p *lua.LTable) error

func (o *Options) setDefaults() {
	if o.MaxStringBytes == 0 {
		o.MaxStringBytes = defaultMaxStringBytes
	}
	if o.PoolSize == 0 {
		o.PoolSize = runtime.GOMAXPROCS(0) * 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CallStackSize == 0 {
		o.CallStackSize = defaultCallStackSize
	}
	if o.RegistrySize == 0 {
		o.RegistrySize = defaultRegistrySize
	}
	if o.RegistryMaxSize == 0 {
		o.RegistryMaxSize = max(defaultRegistryMaxSize, o.RegistrySize)
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = defaultLoadTimeout
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.APIPrefix == "" {
		o.APIPrefix = DefaultAPIPrefix
	}
	if o.APITimeout == 0 {
		o.APITimeout = defaultAPITimeout
	}
	o.HTTP.setDefaults()
	if !slices.ContainsFunc(o.extensions, func(e extension) bool { return e.name == fdlLayerName }) {
		o.extensions = append(slices.Clip(o.extensions), fdlLayer(*o))
	}
}

// Validate reports whether o is valid, with an error wrapping
// [handlers.ErrInvalidConfig] that says why.
func (o Options) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max string bytes", int64(o.MaxStringBytes)},
		{"pool size", int64(o.PoolSize)},
		{"call stack size", int64(o.CallStackSize)},
		{"registry size", int64(o.RegistrySize)},
		{"registry max size", int64(o.RegistryMaxSize)},
		{"load timeout", int64(o.LoadTimeout)},
		{"max memory", o.MaxMemory},
		{"api timeout", int64(o.APITimeout)},
		{"http timeout", int64(o.HTTP.Timeout)},
		{"http max body bytes", o.HTTP.MaxBodyBytes},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: lua %s %d is negative", handlers.ErrInvalidConfig, f.name, f.v)
		}
	}
	if o.RegistryMaxSize != 0 && o.RegistryMaxSize < o.RegistrySize {
		return fmt.Errorf("%w: lua registry max size %d is below the registry size %d", handlers.ErrInvalidConfig, o.RegistryMaxSize, o.RegistrySize)
	}
	if o.APIPrefix != "" {
		if _, err := subjects.NewScheme(o.APIPrefix); err != nil {
			return fmt.Errorf("%w: lua api prefix: %w", handlers.ErrInvalidConfig, err)
		}
	}
	return nil
}

// Error is a problem in a Lua script: a syntax error, an error raised
// while it loads or runs (error(...), a runtime error, running out of time),
// or a description or result the script got wrong.
type Error struct {
	// File is the script's path as it was loaded.
	File string
	// Line is the line in File, 0 when unknown.
	Line int
	// Message says what went wrong.
	Message string
	// Err is the cause when there is one to match: context.DeadlineExceeded
	// or context.Canceled for a call that ran out of time, ErrBadResult for
	// a result that is not one.
	Err error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Message
	}
	return e.File + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Handler is the Lua/FDL handler kind: one entry point of a compiled script
// (see [LoadScript]). Each call runs on a Lua state from the handler's pool
// in a fresh global environment, so nothing a call leaves behind is seen by
// the next. A Handler is safe for concurrent use. It owns its states; Close
// ends them and is idempotent.
type Handler struct {
	file  string
	entry string
	ref   string
	line  int
	proto *lua.FunctionProto
	opts  Options

	mu     sync.Mutex // orders closed against put and the start of a state
	closed atomic.Bool
	pool   chan *vmState  // idle states; capacity PoolSize
	states sync.WaitGroup // the states not closed yet, idle or running a call
}

var _ handlers.Handler = (*Handler)(nil)

func newHandler(file, entry, ref string, line int, proto *lua.FunctionProto, opts Options) *Handler {
	return &Handler{
		file: file, entry: entry, ref: ref, line: line, proto: proto, opts: opts,
		pool: make(chan *vmState, opts.PoolSize),
	}
}

// Handle calls the entry point with the event as p. It maps the entry
// point's return to a [handlers.Result] (nil or a table without exitState is
// CONTINUE) and returns the modified p.input as Result.Input when the call
// changed it. A script error is a *[Error]; running out of time is a
// *Error that also wraps [handlers.ErrTimeout] and context.DeadlineExceeded, and
// holding more than [Options.MaxMemory] one that wraps [ErrMemoryLimit].
//
// The call runs on the caller's goroutine and Handle returns once it has
// really stopped: the VM checks ctx before every instruction, and the
// builtins that can run long (string patterns) check it as they go, so a
// call stops soon after ctx ends, and whoever counts calls in flight counts
// it until then. A state whose call outlived ctx, or failed in a way that
// leaves it unfit, is closed, never reused.
func (h *Handler) Handle(ctx context.Context, ev *event.Event) (handlers.Result, error) {
	if h.closed.Load() {
		return handlers.Result{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return handlers.Result{}, ctxError(&Error{File: h.file, Message: err.Error()}, err)
	}
	vm, err := h.get()
	if err != nil {
		return handlers.Result{}, err
	}
	res, broken, err := h.run(vm, ctx, ev)
	// A call that outlived its context may have stopped anywhere: its
	// state is not reused.
	if broken || vm.dirty || ctx.Err() != nil {
		h.discard(vm)
	} else {
		h.put(vm)
	}
	return res, err
}

// run makes one call on vm. broken reports a panic, after which the state
// is not fit for reuse; the panic is returned as a *handlers.PanicError.
func (h *Handler) run(vm *vmState, ctx context.Context, ev *event.Event) (res handlers.Result, broken bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, broken, err = handlers.Result{}, true, &handlers.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	res, err = vm.call(ctx, h, ev)
	return res, false, err
}

// Close ends the idle states. A call still running finishes, and its state
// ends then. Close waits briefly for those calls and says so if some are
// still running. It is idempotent and safe for concurrent use.
func (h *Handler) Close() error {
	h.mu.Lock()
	if h.closed.Swap(true) {
		h.mu.Unlock()
		return nil
	}
	for drained := false; !drained; {
		select {
		case vm := <-h.pool:
			h.discard(vm)
		default:
			drained = true
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.states.Wait()
		close(done)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		// The waiter goroutine ends with the last of those calls.
		return fmt.Errorf("handlers: lua %s: calls still running after %v", h.ref, closeWait)
	}
}

// get returns an idle state, or makes a new one.
func (h *Handler) get() (*vmState, error) {
	select {
	case vm := <-h.pool:
		return vm, nil
	default:
	}
	vm, err := newVMState(h.file, &h.opts)
	if err != nil {
		return nil, err
	}
	// states.Add under mu, so that it never races with the Wait of Close.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		vm.close()
		return nil, ErrClosed
	}
	h.states.Add(1)
	return vm, nil
}

// put returns vm to the pool, or ends it when the pool is full or closed.
func (h *Handler) put(vm *vmState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed.Load() {
		select {
		case h.pool <- vm:
			return
		default:
		}
	}
	h.discard(vm)
}

// discard ends vm.
func (h *Handler) discard(vm *vmState) {
	vm.close()
	h.states.Done()
}

// ctxError returns e for a call stopped by its context: it wraps cause and,
// for a deadline, [handlers.ErrTimeout], so that the Timeout middleware and
// errors.Is see it.
func ctxError(e *Error, cause error) error {
	e.Err = cause
	if handlers.IsTimeout(cause) {
		return fmt.Errorf("%w: %w", handlers.ErrTimeout, e)
	}
	return e
}

// errorFrom turns an error of a PCall into a *Error with the file and
// line of the script.
// A value given to error() that is not a string is shown as its JSON when
// it has one.
func errorFrom(file string, err error, codec *jsonCodec) *Error {
	var aerr *lua.ApiError
	if !errors.As(err, &aerr) {
		return &Error{File: file, Message: err.Error()}
	}
	var msg string
	switch v := aerr.Object.(type) {
	case lua.LString:
		msg = string(v)
	case lua.LNumber:
		msg = lua.LVAsString(v)
	case nil:
		msg = aerr.Error()
	default:
		msg = "error(" + v.Type().String() + ")"
		if data, err := codec.encode(v); err == nil && len(data) <= 1024 {
			msg = "error(" + string(data) + ")"
		}
	}
	e := &Error{File: file, Message: msg}
	if line, rest, ok := cutPosition(msg, file); ok {
		e.Line, e.Message = line, rest
	}
	return e
}

// cutPosition splits "file:12: rest" into 12 and "rest".
func cutPosition(msg, file string) (int, string, bool) {
	rest, ok := strings.CutPrefix(msg, file+":")
	if !ok {
		return 0, "", false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i == len(rest) || rest[i] != ':' {
		return 0, "", false
	}
	line, err := strconv.Atoi(rest[:i])
	if err != nil {
		return 0, "", false
	}
	return line, strings.TrimSpace(rest[i+1:]), true
}
