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
// watch has delivered the whole registry, runs on a connection that has
// not lost its server since it started, and keeps up with the bucket, see
// [Client.RegistryWatched]);
// otherwise, and for every subject with a key, Decide sends the request as
// before, and "no responders" with a key is still NO_WORKER.
//
// The guarantee: a worker writes its registration of a subject before it
// subscribes to it (and removes it only after it has unsubscribed), so a
// Decide skips a subject some worker serves only during the time the
// registration's update takes to reach the client after the write, one
// server-to-client delivery. The exception is a worker whose registration
// write failed (its Start or Replace returns the error, and it serves
// anyway): until its refresh writes the key, Decide skips its new subjects.
// A fleet whose workers do not keep the registry
// (pkg/worker Config.Registry off, for trigger-worker: no JetStream) must
// use NoRegistryWatch, or its functions are never asked when a bucket
// written by other workers exists under the same prefix. Every 2 seconds the
// client reads the bucket's last revision: the copy is trusted for 5 seconds
// after a check that found the watch had delivered what the previous check
// saw, so a JetStream that stops answering or a stalled watch ends the
// shortcut within 5 seconds; a bucket deleted and made again is read anew.
//
// Work done under a context that carries a Trigger-Origin (the context a
// trigger function is called with) is stamped with it, so it fires no
// trigger: Publish sends the flagged event (with a fleet loop key, flagged
// for that event's subject and body only), and Decide answers allowed at
// once.
package client
