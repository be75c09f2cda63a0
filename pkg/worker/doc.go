// Package worker is the runtime of a trigger-worker: on a NATS connection it
// is given (see internal/natsconn for the one trigger-worker makes), it
// subscribes in a queue group to the subjects its functions need, runs the
// matching functions for every event and answers PRE requests with one
// decision each.
//
// A [Worker] is built around a [matcher.Matcher] whose set of functions can
// be swapped at any time ([Worker.Reload], or [Worker.ReloadRevision] for
// the revisions of a function bundle, whose number every PRE decision then
// carries; [DurableConfig.FollowActive] and [Worker.SetActive] keep durable
// events with the workers on the fleet's active revision). Each event is handled by exactly
// one worker of the queue group. Everything a function causes through the
// [handlers.Bus] it is given carries the Trigger-Origin header, and events
// carrying a value that [Origin] honours fire no trigger.
//
// Go programs embed a worker by building a matcher set of [handlers.Func]
// values and calling [New] and [Worker.Start]; see examples/embed.
package worker
