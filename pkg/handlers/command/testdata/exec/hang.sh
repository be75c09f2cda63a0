#!/bin/sh
# Starts a background child that keeps stdout open, then waits for it for
# ever. With an argument, first writes "<pid> <child pid>" to the file $1
# (the pid is the process group id of a command Exec runs).
sleep 1000 &
if [ -n "$1" ]; then
	echo "$$ $!" >"$1.tmp" && mv "$1.tmp" "$1"
fi
wait
