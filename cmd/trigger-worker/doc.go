// Command trigger-worker runs triggerbus trigger functions for the events
// an orchestrator publishes on NATS.
//
//	trigger-worker [run] [flags]           run the worker (the default)
//	trigger-worker check [flags]           load config and scripts, list functions and problems
//	trigger-worker emit [flags] TYPE OPTION [JSON|@file]
//	                                       publish a POST event or ask a PRE decision
//	trigger-worker dlq ls|show|replay|purge see and re-drive dead letters (durable delivery)
//	trigger-worker registry ls|prune       list the PRE registry by worker instance, prune gone instances
//	trigger-worker functions push|ls|show|diff|activate|pull|keygen
//	                                       the fleet's functions as one versioned, signed bundle
//
// Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad usage or config.
package main
