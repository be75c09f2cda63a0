#!/bin/sh
# Like hang.sh, but it and its children ignore SIGTERM.
trap '' TERM
sleep 1000 &
echo "$$ $!" >"$1.tmp" && mv "$1.tmp" "$1"
while :; do
	sleep 1
done
