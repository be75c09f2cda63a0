#!/bin/sh
# Writes $1 bytes of "x" to stdout, or without an argument writes for ever.
if [ -z "$1" ]; then
	exec yes
fi
head -c "$1" /dev/zero | tr '\000' x
