// Package bundle stores trigger-worker's functions as one versioned, signed
// bundle in JetStream, so that every worker of a fleet can run the same
// functions.
//
// A [Bundle] is the function definitions (the functions list of a config,
// as the file functions.yaml, and the FDL scripts of scripts.dir) plus
// every file they reference (lua files, webhook CA files), with a
// [Manifest]: the functions (ref, kind, trigger type and options), the
// sha256 and size of each file, when, by whom and why it was made, and its
// revision. Exec commands are paths of the worker's host: the manifest
// lists them, the bundle does not copy the programs.
//
// A [Store] keeps the revisions in the JetStream object store
// <PREFIX>_FUNCTIONS, one object <revision>.tar.gz each, and names the
// active revision in the key-value bucket <PREFIX>_FUNCTIONS_HEAD (key
// "active"; key "latest" is the last revision number given out, taken with
// a compare-and-set so that concurrent pushes get distinct, increasing
// numbers). It prunes revisions beyond its history, never the active one.
//
// A bundle may be signed with an ed25519 nkey ([Bundle.Sign]); [Verify]
// accepts only a bundle signed by a trusted key whose files match the
// signed hashes.
//
// The package is internal: the definitions are trigger-worker's config
// (package config), which only the command turns into handlers. It
// imports config, subjects, nats.go's jetstream and nkeys.
package bundle
