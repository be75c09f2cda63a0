// Command gencatalogue turns pkg/subjects/catalogue.json, the trigger
// catalogue of triggerbus, into the Go source file catalogue_data.go, so that
// the catalogue is compiled into the binary with no parsing at start-up.
//
// Run it with `go generate ./pkg/subjects`.
package main
