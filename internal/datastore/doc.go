// Package datastore keeps the private data maps of FDL scripts (their
// dataStore) in a JetStream key-value bucket, <PREFIX>_DATASTORE: one key per
// function ref, whose value is the map's JSON. It implements the lua kind's
// DataStore (lua.Options.DataStore) without that package linking NATS.
//
// Consistency: a write replaces the whole map and the last write wins. With
// one replica a read sees the last write that completed before it; with
// more, a lagging replica may answer a read (direct get) with an older map.
// The bucket keeps one revision of each key.
package datastore
