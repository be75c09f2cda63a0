package lua

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// The FDL compatibility layer: what scripts written for the orchestrator's
// FDL runtime expect besides plain Lua, so that they run unchanged. It is a
// extension that every set of Options gets (see setDefaults):
//
//   - object-style payloads: p.input, p.user and p.customer answer getters,
//     setters, list and map methods, and enum-valued fields come back as
//     enum objects (fdl_object.go);
//   - new(type, ...) for enums, value objects and helpers (this file);
//   - adminAPI and userAPI, bridged to NATS requests (fdl_api.go);
//   - simplehttp, on net/http with the webhook kind's limits (fdl_http.go);
//   - JSON, Utils, FDLHashHelper, syslog (fdl_helpers.go), FDLDateHelper
//     (fdl_date.go) and FDLXMLHelper (fdl_xml.go);
//   - dataStore, FDLEmailHelper and translate (fdl_services.go);
//   - the methods every object answers as a Java object (fdl_java.go).
//
// docs/fdl.md describes it for script authors and for whoever serves the
// API bridge.

// DefaultAPIPrefix is the subject prefix of the API bridge when
// [Options.APIPrefix] is empty.
const DefaultAPIPrefix = "fco.api"

const (
	fdlLayerName      = "fdl"
	defaultAPITimeout = 10 * time.Second
)

// HTTPOptions limits the simplehttp module of FDL scripts. The zero value
// takes the defaults, which are those of the webhook kind.
type HTTPOptions struct {
	// Timeout bounds each request, from connecting to reading the whole
	// response; 0 means 10s. A sooner deadline of the call's context wins.
	Timeout time.Duration
	// MaxBodyBytes caps a response body; 0 means 1 MiB. A larger body fails
	// the request.
	MaxBodyBytes int64
	// DenyPrivateNetworks refuses to connect to addresses that are not
	// public, as the webhook kind's option of that name does.
	DenyPrivateNetworks bool
	// Disabled makes every request fail, as if no network were reachable.
	Disabled bool
	// Transport, when not nil, makes the requests instead of simplehttp's
	// own client (which then neither dials nor applies
	// DenyPrivateNetworks): `trigger-worker test` answers them from a test
	// file. nil means the network.
	Transport http.RoundTripper
}

// Defaults of [HTTPOptions], the webhook kind's.
const (
	httpDefaultTimeout = 10 * time.Second
	httpDefaultMaxBody = 1 << 20
)

func (o *HTTPOptions) setDefaults() {
	if o.Timeout == 0 {
		o.Timeout = httpDefaultTimeout
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = httpDefaultMaxBody
	}
}

// sharedState is what the FDL layer shares among the Lua states of one set of
// options. It holds no resource that needs closing: the HTTP client keeps
// no idle connection.
type sharedState struct {
	prefix     string
	apiTimeout time.Duration
	http       HTTPOptions
	client     *http.Client
	maxBytes   int
	dataStore  DataStore
	mail       Mailer
	messages   map[string]string
}

// fdlLayer returns the FDL layer for o, which has its defaults.
func fdlLayer(o Options) extension {
	sh := &sharedState{
		prefix:     o.APIPrefix,
		apiTimeout: o.APITimeout,
		http:       o.HTTP,
		client:     httpClient(o.HTTP),
		maxBytes:   o.MaxStringBytes,
		dataStore:  o.DataStore,
		mail:       o.Mail,
		messages:   o.Messages,
	}
	return extension{name: fdlLayerName, open: sh.open}
}

// compatLayer is the FDL layer of one Lua state. Like the state, it serves one
// call at a time.
type compatLayer struct {
	sh *sharedState
	vm *vmState
	L  *lua.LState

	// Metamethods, made once per state and shared by the metatables of
	// every call (enums compare equal only when their __eq is the same
	// function).
	objIndex, listIndex, enumIndex   *lua.LFunction
	enumEq, enumString, enumConcat   *lua.LFunction
	bridgeMT, connMT, iterMT, nodeMT *lua.LTable // protected, for userdata
	helpers                          map[string]*lua.LUserData

	call callState
}

// callState is what the FDL layer keeps for the current call.
type callState struct {
	// Metatables of the call's tables. They are the call's own, so that a
	// script that changes one changes nothing for the next call. listMT
	// and enumMT are made with the call's first list and enum object (see
	// listMeta and enumMeta).
	objectMT, listMT, enumMT *lua.LTable
	typeMT                   map[string]*lua.LTable // value objects by type
	// numText holds the document's text of big numbers read through
	// getters, so that a setter given one writes it back exactly; "" when
	// two texts share one float64.
	numText map[lua.LNumber]string
	// ident is the syslog identity set by syslog.openlog.
	ident string
	// sessions are the session users of the global adminAPI and userAPI.
	sessions map[string]string
}

func (sh *sharedState) open(vm *vmState, g *lua.LTable) (prepareFunc, error) {
	L := vm.L
	s := &compatLayer{sh: sh, vm: vm, L: L}
	// p.input, p.user and p.customer become objects when decoded.
	vm.fieldHooks = append(vm.fieldHooks, func(v lua.LValue) { s.attach(v, 0) })
	s.objIndex = L.NewFunction(s.objectIndex)
	s.listIndex = L.NewFunction(s.listMethods)
	s.enumIndex = L.NewFunction(s.enumMethods)
	s.enumEq = L.NewFunction(s.enumEqual)
	s.enumString = L.NewFunction(s.enumToString)
	s.enumConcat = L.NewFunction(s.enumConcatenate)
	protectedBy := func(index lua.LValue, tostring lua.LGFunction) *lua.LTable {
		mt := L.NewTable()
		mt.RawSetString("__index", index)
		mt.RawSetString("__metatable", lua.LFalse)
		mt.RawSetString("__tostring", L.NewFunction(tostring))
		return mt
	}
	protected := func(index lua.LValue, name string) *lua.LTable {
		return protectedBy(index, func(L *lua.LState) int {
			L.Push(lua.LString(name))
			return 1
		})
	}
	s.bridgeMT = protectedBy(L.NewFunction(s.bridgeIndex), func(L *lua.LState) int {
		name := "API"
		if b, ok := L.CheckUserData(1).Value.(*bridge); ok {
			name = b.api + "API"
		}
		L.Push(lua.LString(name))
		return 1
	})
	s.connMT = protected(s.methods(connMethods(s)), "simplehttp connection")
	s.iterMT = protected(s.methods(iterMethods(s)), "iterator")
	s.nodeMT = protectedBy(s.methods(nodeMethods(s)), s.nodeToString)

	s.helpers = map[string]*lua.LUserData{}
	for name, methods := range map[string]map[string]lua.LGFunction{
		"JSON":           s.jsonMethods(),
		"Utils":          s.utilsMethods(),
		"FDLDateHelper":  s.dateMethods(),
		"FDLHashHelper":  s.hashMethods(),
		"FDLXMLHelper":   s.xmlMethods(),
		"simplehttp":     s.httpMethods(),
		"syslog":         s.syslogMethods(),
		"dataStore":      s.dataStoreMethods(),
		"translate":      s.translateMethods(),
		"FDLEmailHelper": s.emailMethods(),
	} {
		index := s.methods(methods)
		if name == "syslog" {
			syslogConstants(index)
		}
		ud := L.NewUserData()
		ud.Value = helper(name)
		mt := protected(index, name)
		if name == "FDLEmailHelper" {
			// FDL scripts call the helper itself: emailHelper(to, ...).
			mt.RawSetString("__call", L.NewFunction(s.sendEmail))
		}
		ud.Metatable = mt
		s.helpers[name] = ud
		g.RawSetString(name, ud)
	}
	g.RawSetString("new", L.NewFunction(s.newObject))
	// string.format("%s", e) writes an enum object as its name, as FDL
	// runtimes write enums.
	if str, ok := g.RawGetString("string").(*lua.LTable); ok {
		if f, ok := str.RawGetString("format").(*lua.LFunction); ok && f.IsG {
			format := f.GFunction
			str.RawSetString("format", L.NewFunction(func(L *lua.LState) int {
				for i := 2; i <= L.GetTop(); i++ {
					if name, ok := s.enumValue(L.Get(i)); ok {
						L.Replace(i, lua.LString(name))
					}
				}
				return format(L)
			}))
		}
	}
	// The global API objects are shared by all calls; their session users
	// are the call's (callState.sessions).
	g.RawSetString("adminAPI", s.newBridge(apiAdmin, true))
	g.RawSetString("userAPI", s.newBridge(apiUser, true))
	return s.prepare, nil
}

// helper is the Value of a helper's userdata (JSON, Utils, ...).
type helper string

// methods returns a table of the functions of m.
func (s *compatLayer) methods(m map[string]lua.LGFunction) *lua.LTable {
	t := s.L.CreateTable(0, len(m))
	for name, fn := range m {
		t.RawSetString(name, s.L.NewFunction(fn))
	}
	return t
}

// selfBase returns the index of the first argument of a method of self: 2
// when it was called as self:method(...), 1 as self.method(...).
func selfBase(L *lua.LState, self lua.LValue) int {
	if L.GetTop() >= 1 && L.Get(1) == self {
		return 2
	}
	return 1
}

// helperBase is selfBase for the helper of the given name.
func (s *compatLayer) helperBase(L *lua.LState, name string) int {
	return selfBase(L, s.helpers[name])
}

// prepare readies the layer for a call: fresh metatables and no session
// users. p.input, p.user and p.customer become objects when the call
// decodes them (the hook open adds).
func (s *compatLayer) prepare(_ context.Context, _, _ *lua.LTable) error {
	L := s.L
	s.call = callState{}
	c := &s.call
	c.objectMT = L.CreateTable(0, 1)
	c.objectMT.RawSetString("__index", s.objIndex)
	return nil
}

// The enums new() knows, with their values. Those of the catalogue come
// from pkg/subjects; the others are the orchestrator API's.
var enumValues = map[string][]string{
	"ResourceType":            subjects.Values(subjects.OptionResourceType),
	"JobType":                 subjects.JobTypes(),
	"JobStatus":               subjects.Values(subjects.OptionJobStatus),
	"ServerStatus":            subjects.Values(subjects.OptionServerStatus),
	"Condition":               {"BETWEEN", "CONTAINS", "EARLIER_THAN", "ENDS_WITH", "IS_EQUAL_TO", "IS_GREATER_THAN", "IS_GREATER_THAN_OR_EQUAL_TO", "IS_LESS_THAN", "IS_LESS_THAN_OR_EQUAL_TO", "IS_NOT_EQUAL_TO", "LATER_THAN", "NOT_BETWEEN", "NOT_CONTAINS", "NOT_ENDS_WITH", "NOT_STARTS_WITH", "STARTS_WITH"},
	"SnapshotType":            {"DISK", "SERVER"},
	"IPType":                  {"INVALID", "IPV4", "IPV6"},
	"FirewallRuleAction":      {"ALLOW", "DROP", "REJECT"},
	"FirewallProtocol":        {"ANY", "GRE", "ICMP", "ICMP6", "IPSEC_AH", "IPSEC_ESP", "L2TP", "TCP", "UDP"},
	"FirewallConnectionState": {"ALL", "EXISTING", "NEW"},
	"Aggregation":             {"AVERAGE", "COUNT", "MAX", "MIN", "SUM"},
	"ResultOrder":             {"ASC", "DESC"},
	"Status":                  {"ACTIVE", "ADMIN", "CLOSED", "DELETED", "DISABLED"},
	"ResourceState":           {"ACTIVE", "CREATING", "DELETED", "HIDDEN", "LOCKED", "TO_BE_DELETED"},
}

// enumFields are the fields of payload and reply objects whose string
// values getters return as enum objects, with the enum of each; "" picks
// the enum by the value (status is a JobStatus of a job, a ServerStatus of a
// server, a Status of a customer).
var enumFields = map[string]string{
	"jobType":       "JobType",
	"itemType":      "ResourceType",
	"resourceType":  "ResourceType",
	"status":        "",
	"jobStatus":     "JobStatus",
	"serverStatus":  "ServerStatus",
	"resourceState": "ResourceState",
	"condition":     "Condition",
}

// statusEnums are tried in order for a status field.
var statusEnums = []string{"JobStatus", "ServerStatus", "Status"}

// valueTypeInfo describes a value object new() builds: its fields are those
// its setters write, plus these.
type valueTypeInfo struct {
	// lists are fields that hold lists: a getter reading one that is
	// missing makes it an empty list, and a setter given one value makes a
	// list of it.
	lists []string
	// preset says that the lists are in the object from the start (and so
	// in its JSON), not only once read.
	preset bool
	// adders map add methods to the list field they append to, where the
	// field is not the method's name without "add" (see objectIndex).
	adders map[string]string
	// enums are fields whose values belong to an enum: setters check them.
	enums map[string]string
	// elems are methods that find, remove or clear the elements of a list
	// field, by name (see listFieldMethods).
	elems map[string]elemMethod
}

// elemMethod is a method of a value object over the elements of its list
// field: get, remove or clear them.
type elemMethod struct {
	op elemOp
	// field is the list field; key the field of its elements that a
	// string argument is compared with (FilterCondition's field,
	// OrderedField's fieldName).
	field, key string
}

type elemOp int

const (
	elemGet elemOp = iota
	elemRemove
	elemClear
)

// elemMethods returns the get, remove and clear methods of the list field,
// named get<name>, remove<name> and clear<name> for each of names.
func elemMethods(field, key string, names ...string) map[string]elemMethod {
	m := map[string]elemMethod{}
	for _, n := range names {
		m["get"+n] = elemMethod{elemGet, field, key}
		m["remove"+n] = elemMethod{elemRemove, field, key}
		m["clear"+n] = elemMethod{elemClear, field, key}
	}
	return m
}

// valueTypes are the value objects of the orchestrator API's object model
// (SearchFilter, FilterCondition, QueryLimit, OrderedField, ...), with the
// fields and methods that are more than plain accessors.
var valueTypes = map[string]valueTypeInfo{
	"SearchFilter": {
		lists:  []string{"filterConditions"},
		preset: true,
		adders: map[string]string{"addCondition": "filterConditions", "addFilterCondition": "filterConditions"},
		elems: elemMethods("filterConditions", "field",
			"Condition", "Conditions", "FilterCondition", "FilterConditions"),
	},
	"FilterCondition": {
		lists:  []string{"value"},
		preset: true,
		adders: map[string]string{"addValue": "value"},
		enums:  map[string]string{"condition": "Condition"},
	},
	"QueryLimit": {
		lists:  []string{"orderBy"},
		adders: map[string]string{"addOrderBy": "orderBy", "addOrderedField": "orderBy"},
		elems:  elemMethods("orderBy", "fieldName", "OrderBy", "OrderedField", "OrderedFields"),
	},
	"OrderedField":     {enums: map[string]string{"sortOrder": "ResultOrder"}},
	"Query":            {},
	"AggregationField": {enums: map[string]string{"aggregationFunction": "Aggregation"}},
	"ResourceKey":      {},
	"ImagePermission":  {},
	"FirewallTemplate": {
		lists:  []string{"firewallInRuleList", "firewallOutRuleList"},
		adders: map[string]string{"addFirewallInRule": "firewallInRuleList", "addFirewallOutRule": "firewallOutRuleList"},
	},
	"FirewallRule": {enums: map[string]string{
		"action": "FirewallRuleAction", "protocol": "FirewallProtocol", "connState": "FirewallConnectionState", "ipType": "IPType",
	}},
	"Snapshot": {enums: map[string]string{"type": "SnapshotType"}},
}

// typeNames are the names new() takes, for its suggestions.
var typeNames = func() []string {
	var names []string
	for n := range enumValues {
		names = append(names, n)
	}
	for n := range valueTypes {
		names = append(names, n)
	}
	names = append(names, "Map", "List", "AdminAPI", "UserAPI",
		"JSON", "Utils", "FDLDateHelper", "FDLHashHelper", "FDLXMLHelper", "FDLEmailHelper", "simplehttp", "syslog")
	slices.Sort(names)
	return names
}()

// newObject is new(type, ...): an enum value, a value object, a Map or
// List, an API bridge or a helper.
func (s *compatLayer) newObject(L *lua.LState) int {
	name := L.CheckString(1)
	typ := name
	if !slices.Contains(typeNames, typ) {
		typ = ""
		for _, n := range typeNames {
			if strings.EqualFold(n, name) {
				typ = n
				break
			}
		}
	}
	if typ == "" {
		msg := fmt.Sprintf("new: unknown type %q", name)
		if sug := subjects.Suggest(name, typeNames); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		}
		L.RaiseError("%s", msg)
	}
	if values, ok := enumValues[typ]; ok {
		v := L.Get(2)
		if e, ok := s.enumValue(v); ok {
			v = lua.LString(e)
		}
		str, ok := v.(lua.LString)
		if !ok {
			L.RaiseError("new(%q): want a value such as %q, got a %s", typ, values[0], v.Type())
		}
		if err := checkEnum(typ, string(str)); err != "" {
			L.RaiseError("new(%q): %s", typ, err)
		}
		L.Push(s.newEnum(typ, string(str)))
		return 1
	}
	switch typ {
	case "Map":
		t := L.NewTable()
		t.Metatable = s.call.objectMT
		L.Push(t)
	case "List":
		L.Push(s.newList())
	case "AdminAPI":
		L.Push(s.newBridge(apiAdmin, false))
	case "UserAPI":
		L.Push(s.newBridge(apiUser, false))
	default:
		if ud, ok := s.helpers[typ]; ok {
			L.Push(ud)
			return 1
		}
		L.Push(s.newValue(typ))
	}
	return 1
}

// checkEnum returns why value is not a member of the enum typ, "" when
// it is.
func checkEnum(typ, value string) string {
	values := enumValues[typ]
	if slices.Contains(values, value) {
		return ""
	}
	msg := fmt.Sprintf("unknown %s %q", typ, value)
	if sug := subjects.Suggest(value, values); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	return msg
}

// listMeta returns the call's metatable of lists, made when the call's first
// list needs it: until then no table has it, so comparing a metatable with
// call.listMT, nil, finds none.
func (s *compatLayer) listMeta() *lua.LTable {
	if s.call.listMT == nil {
		s.call.listMT = s.L.CreateTable(0, 1)
		s.call.listMT.RawSetString("__index", s.listIndex)
	}
	return s.call.listMT
}

// newList returns an empty list: it encodes as a JSON array.
func (s *compatLayer) newList() *lua.LTable {
	t := s.L.NewTable()
	s.vm.codec.markArray(t)
	t.Metatable = s.listMeta()
	return t
}

// newValue returns an empty value object of type typ.
func (s *compatLayer) newValue(typ string) *lua.LTable {
	t := s.L.NewTable()
	if info := valueTypes[typ]; info.preset {
		for _, f := range info.lists {
			t.RawSetString(f, s.newList())
		}
	}
	t.Metatable = s.typeMT(typ)
	return t
}

// typeMT returns the call's metatable of value objects of type typ.
func (s *compatLayer) typeMT(typ string) *lua.LTable {
	if mt, ok := s.call.typeMT[typ]; ok {
		return mt
	}
	mt := s.L.CreateTable(0, 2)
	mt.RawSetString("__index", s.objIndex)
	mt.RawSetString("__type", lua.LString(typ))
	if s.call.typeMT == nil {
		s.call.typeMT = map[string]*lua.LTable{}
	}
	s.call.typeMT[typ] = mt
	return mt
}

// valueType returns the type of a value object, "" for other values.
func (s *compatLayer) valueType(t *lua.LTable) string {
	mt, ok := t.Metatable.(*lua.LTable)
	if !ok {
		return ""
	}
	typ, ok := mt.RawGetString("__type").(lua.LString)
	if !ok || s.call.typeMT[string(typ)] != mt {
		return ""
	}
	return string(typ)
}
