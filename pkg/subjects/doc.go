// Package subjects is the trigger catalogue of triggerbus and its subject scheme.
//
// The catalogue holds the 27 trigger types of the orchestrator with their phase
// (PRE or POST), the event they belong to and the kind of option that filters
// them, plus the enum values of the closed option sets (ResourceType,
// ServerStatus, JobStatus) and the known values of the open ones (User and Admin
// API method names). It is compiled into the binary.
//
// Every trigger point is published to a subject of the form
//
//	<prefix>.<TRIGGER_TYPE>.<OPTION>
//
// for example trigger.POST_CREATE.SERVER. A [Scheme] builds, parses and
// validates such subjects for one prefix. A function registered for option
// [Any] is served by the wildcard subject <prefix>.<TRIGGER_TYPE>.*.
//
// The package uses the standard library only and imports nothing else of
// triggerbus. Everything in it is safe for concurrent use.
package subjects
