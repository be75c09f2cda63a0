#!/bin/sh
# Writes the names and values of its environment to the file $1.
env >"$1"
