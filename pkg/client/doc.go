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
// Work done under a context that carries a Trigger-Origin (the context a
// trigger function is called with) is stamped with it, so it fires no
// trigger: Publish sends the flagged event (with a fleet loop key, flagged
// for that event's subject and body only), and Decide answers allowed at
// once.
package client
