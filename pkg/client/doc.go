// Package client is the SDK orchestrator services use to fire triggers:
// [Client.Publish] for POST trigger points (asynchronous) and
// [Client.Decide] for PRE trigger points, which returns the decision of the
// worker fleet.
//
// When every worker is down a PRE request gets no answer. Decide then reads
// the registry the workers keep in JetStream to tell "no trigger registered
// for this subject" (allowed at once) from "triggers registered but no
// worker answering" (the caller's [Policy], by default refused with code
// NO_WORKER). Registrations are kept per worker instance, stay when
// workers stop and never expire, so a dead fleet still refuses. Without
// JetStream the policy decides alone.
//
// Most actions have no PRE function. From its first Decide on, a client
// keeps a watched copy of the registry's keys ([Options.NoRegistryWatch]
// turns it off), and Decide answers NO_TRIGGER for a subject whose type
// and option (and the type's ANY) have no key without sending the request.
// It fails closed: the copy is used only while it is known current (the
// watch has delivered the whole registry and runs on a connection that has
// not lost its server since it started, see [Client.RegistryWatched]);
// otherwise, and for every subject with a key, Decide sends the request as
// before, and "no responders" with a key is still NO_WORKER.
//
// The guarantee: a worker writes its registration of a subject before it
// subscribes to it (and removes it only after it has unsubscribed), so a
// Decide skips a subject some worker serves only during the time the
// registration's update takes to reach the client after the write, one
// server-to-client delivery. A fleet whose workers do not keep the registry
// (pkg/worker Config.Registry off, for trigger-worker: no JetStream) must
// use NoRegistryWatch, or its functions are never asked when a bucket
// written by other workers exists under the same prefix. Do not delete the
// registry bucket under running clients: their watch notices only when its
// consumer cannot be made again, and one made again on a new bucket starts
// after the old bucket's last revision (restart the clients, or use
// `trigger-worker registry prune`, which keeps the bucket).
//
// Work done under a context that carries a Trigger-Origin (the context a
// trigger function is called with) is stamped with it, so it fires no
// trigger: Publish sends the flagged event (with a fleet loop key, flagged
// for that event's subject and body only), and Decide answers allowed at
// once.
package client
