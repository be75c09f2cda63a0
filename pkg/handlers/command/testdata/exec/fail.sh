#!/bin/sh
# Writes a long stderr, then a last line, and exits with status $1 (3 if none).
cat >/dev/null
i=0
while [ $i -lt 100 ]; do
	echo "noise line $i of a stderr longer than the 4 KiB that are kept" >&2
	i=$((i + 1))
done
echo "quota service unreachable" >&2
exit "${1:-3}"
