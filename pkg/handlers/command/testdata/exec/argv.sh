#!/bin/sh
# Writes each argument after the first to the file $1, each followed by a NUL
# byte, and the working directory to $1.pwd.
out=$1
shift
: >"$out"
for a in "$@"; do
	printf '%s\000' "$a" >>"$out"
done
pwd >"$out.pwd"
