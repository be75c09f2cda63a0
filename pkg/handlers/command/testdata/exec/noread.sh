#!/bin/sh
# Exits at once, without reading the event on stdin.
printf '{"exitState":"SUCCESS"}'
