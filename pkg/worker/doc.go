// Package worker is the runtime of a trigger-worker: on a NATS connection it
// is given (see internal/natsconn for the one trigger-worker makes), it
// subscribes in a queue group to the subjects its functions need, runs the
// matching functions for every event and answers PRE requests with one
// decision each.
//
// A Go program embeds a worker in three calls, the way nats.go's
// micro.AddService adds a service:
//
//	w, err := worker.New(nc, worker.Config{}, worker.Function{
//		Ref: "deny_big_servers", TriggerType: "PRE_CREATE", Options: []string{"SERVER"},
//		Handler: handlers.Func(denyBigServers),
//	})
//	err = w.Start(ctx)
//	defer w.Stop(ctx)
//
// Registration is typed: a [Function] carries a [handlers.Handler] and, for
// a SCHEDULED function, a [schedule.Schedule]. [New] and [Worker.Replace]
// check every function before any serves and return a [FunctionError] per
// problem; Replace swaps the functions all or nothing, and events in
// flight finish with the functions they started with. [Worker.ReplaceRevision]
// does the same for the revisions of a function bundle, whose number every
// PRE decision then carries; [DurableConfig.FollowActive] and
// [Worker.SetActive] keep durable events with the workers on the fleet's
// active revision. Each event is
// handled by exactly one worker of the queue group. Everything a function
// causes through the [handlers.Bus] it is given carries the Trigger-Origin
// header, and events carrying a value that [Origin] honours fire no
// trigger.
//
// One call path runs every function (dispatch.go): intake (intake.go)
// parses, counts, checks the loop guard and matches an event for PRE, POST
// and durable delivery alike; each function then runs through its call
// path: metrics, the result check and the recovery of a panic in one frame
// (function.invoke), then [handlers.Timeout]. Every PRE answer goes through reply (reply.go), which
// then hands the decision to the decision log ([Config.DecisionLog],
// decisionlog.go) off the caller's path. PRE requests are taken one after
// the other by one dispatcher, the lane, so that requests read together
// are answered in one write; idle dispatchers help it when it lags
// (prelane.go). [Offline] (offline.go) runs
// functions on events through the same intake, call path and PRE chain with
// no NATS, for `trigger-worker test` and `eval`. See examples/embed for a
// whole program.
package worker
