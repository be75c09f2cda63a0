// Package contract generates triggerbus's machine-readable wire contract
// from the code's own tables: an AsyncAPI 3.0 document of every trigger
// subject (the catalogue of package subjects), its messages, headers and
// PRE reply, and the PRE registry key-value bucket; and JSON Schemas (draft
// 2020-12) of the event and the decision (the types of package event).
//
// Nothing here is hand-listed that the code already lists: the trigger
// types and options come from [subjects.Types], the header names from the
// constants of packages subjects and worker, the fields of the event, the
// decision and the registry value from their Go types (a field the contract
// has no description for is an error, so that a new field cannot be left
// out). [Files] returns the documents committed under docs/, which
// `trigger-worker schema all --out docs/` regenerates.
package contract
