// Command trigger-worker runs triggerbus trigger functions for the events
// an orchestrator publishes on NATS, and holds the tools that operate a
// fleet of workers:
//
//	trigger-worker [run] [flags]           run the worker (the default)
//	trigger-worker check [flags]           load config and scripts, list functions and problems
//	trigger-worker emit TYPE OPTION [JSON|@file]
//	                                       publish a POST event or ask a PRE decision
//	trigger-worker dlq ls|show|replay|purge see and re-drive dead letters (durable delivery)
//	trigger-worker decisions [flags]       print the PRE decision log
//	trigger-worker registry ls|prune       list the PRE registry by worker instance, prune gone instances
//	trigger-worker functions push|ls|show|diff|activate|pull|keygen
//	                                       the fleet's functions as one versioned, signed bundle
//	trigger-worker version | completion SHELL | help [COMMAND]
//
// The command line is built with cobra: each command is a newXxxCmd
// constructor in its own file, registered in newRootCmd (root.go), with
// only its own flags; see docs/cli.md. Exit codes: 0 success, 1 runtime
// failure, 2 bad usage or config.
package main
