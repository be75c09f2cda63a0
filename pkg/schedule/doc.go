// Package schedule says when a SCHEDULED function runs. It reads every
// schedule form in one place: the tables FDL scripts give in their
// description's schedule ([ParseFDL], units by [Unit]), and the YAML
// config's every/start and cron ([Parse]; cron fields are read by
// github.com/robfig/cron/v3 with Vixie cron's rules kept).
//
// A [Schedule] is a pure function from a time to the next tick, in an IANA
// zone (UTC by default), so every worker of a fleet computes the same ticks
// whenever it starts. Which tick to fire late after a restart (the catch-up
// rule) belongs to the worker's scheduler, which publishes the ticks.
//
// A schedule may belong to a billing entity and a customer ([Owner],
// [Schedule.WithOwner]), as FCO's code blocks did: its ticks carry their
// UUIDs as the event's beUUID and customer.resourceUUID.
//
// The package imports nothing of triggerbus.
package schedule
