package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// confirm asks question on the terminal and reports whether the answer is
// yes. Without a terminal on stdin it asks nothing and reports false:
// destructive commands then need --force.
func confirm(stderr io.Writer, question string) bool {
	if !isTerminal(os.Stdin) {
		return false
	}
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

// needForce is the check of a destructive command before it connects:
// without --force there must be a terminal to ask on.
func needForce(cmdPath string, force bool) error {
	if force || isTerminal(os.Stdin) {
		return nil
	}
	return usagef("%s deletes data: stdin is not a terminal to confirm on, so it needs --force", cmdPath)
}
