#!/bin/sh
# Copies the event from stdin to the file $1.
cat >"$1"
