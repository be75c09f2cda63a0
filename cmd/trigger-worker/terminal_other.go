//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "os"

// isTerminal reports false where it cannot tell: destructive commands then
// need --force.
func isTerminal(*os.File) bool { return false }
