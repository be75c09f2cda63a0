#!/bin/sh
# Starts a process that leaves the command's process group and session
# (setsid sh -c 'sleep 300') and writes "<pid> <its pid>" to the file $1.
# $2 says what then:
#   hang        wait for it for ever;
#   hang-noenv  the same, but it starts with an empty environment;
#   exit        answer SUCCESS and exit at once, leaving it behind.
if [ "$2" = hang-noenv ]; then
	setsid env -i /bin/sh -c 'sleep 300' </dev/null >/dev/null 2>&1 &
else
	setsid /bin/sh -c 'sleep 300' </dev/null >/dev/null 2>&1 &
fi
echo "$$ $!" >"$1.tmp" && mv "$1.tmp" "$1"
if [ "$2" = exit ]; then
	printf '{"exitState":"SUCCESS"}'
	exit 0
fi
wait
