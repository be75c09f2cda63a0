// Package lua is the Lua handler kind: trigger functions written as Lua 5.1
// scripts, FDL scripts among them, run in a sandbox on a gopher-lua VM, with
// the parts of the Lua 5.2 library such scripts call (lua52.go).
//
// [LoadScript] and [LoadScripts] load scripts and return their entry points,
// each a [Handler] with the ref, trigger and schedule its script describes:
//
//	fns, err := lua.LoadScripts("/etc/triggerbus/scripts", lua.Options{})
//	// register each fns[i].Handler by fns[i].Ref, TriggerType and
//	// TriggerOptions; the caller closes it when it is done with it.
//
// Each call runs on a state of the handler's pool, in a fresh global
// environment, and is bounded by its context's deadline, by
// [Options.MaxMemory] and by [Options.MaxStringBytes]; scripts see no file
// system, process or network outside the helpers given to them.
//
// The FDL compatibility layer lives here too (the fdl_*.go files), because
// it reaches into the VM's internals: the objects FDL scripts get (p.input,
// server beans, lists and maps), the helpers (FDLDateHelper, FDLXMLHelper,
// FDLHashHelper, FDLHTTPHelper, JSON, syslog, translate), the adminAPI/userAPI
// bridge to the API on NATS, and the helpers that reach outside a call:
// dataStore through a [DataStore] and FDLEmailHelper through an
// internal/mailer relay (Options.DataStore, Options.Mail). Its pure parts are
// internal packages: Java date patterns (internal/javadate), the XML tree
// (internal/xmltree) and the address checks of FDLHTTPHelper
// (internal/netguard). See docs/fdl.md.
package lua
