// Package mailertest runs an SMTP relay on loopback for tests (go-smtp): it
// records the messages it accepts, and may require STARTTLS or implicit TLS
// with a certificate of its own and PLAIN authentication.
package mailertest
