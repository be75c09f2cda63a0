// Package mailer sends the mail of FDL scripts (FDLEmailHelper) through an
// SMTP relay, with go-mail, at most at a configured rate. The lua kind
// takes a [*Mailer] in its options; the worker makes one from the config's
// email section.
package mailer
