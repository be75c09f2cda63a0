#!/usr/bin/env bash
# Shows trigger-worker discovery with the NATS CLI: starts two workers, one
# with an embedded NATS server and one connected to it with --server, then
# runs
#   nats micro ls
#   nats micro info triggerbus          (the first instance to answer)
#   nats micro info triggerbus <id>     (for each worker)
#   nats micro stats triggerbus
# and stops everything it started.
#
# The NATS CLI is installed with
#   go install github.com/nats-io/natscli/nats@v0.5.0
# into a temporary GOBIN unless `nats` is already on PATH (the first install
# takes a couple of minutes). The worker is built once with go build (the
# same as `go run ./cmd/trigger-worker`, but the script then owns the worker
# processes themselves and can stop them cleanly). Metrics endpoints are off;
# the NATS port is a free one picked at random, the JetStream store is
# temporary.
#
# Usage: scripts/micro-ls.sh        (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/triggerbus-micro-ls.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if command -v nats >/dev/null 2>&1; then
  nats=$(command -v nats)
else
  echo "== installing the NATS CLI (go install github.com/nats-io/natscli/nats@v0.5.0)"
  GOBIN="$tmp/bin" go install github.com/nats-io/natscli/nats@v0.5.0
  nats="$tmp/bin/nats"
fi

echo "== building trigger-worker"
go build -o "$tmp/trigger-worker" ./cmd/trigger-worker

# A free port: one nothing answers on.
port=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    port=$p
    break
  fi
done
if [ -z "$port" ]; then
  echo "micro-ls: no free port found" >&2
  exit 1
fi
url="nats://127.0.0.1:$port"

# Two functions, so that the service metadata has functions and subjects.
cat >"$tmp/trigger-worker.yaml" <<YAML
nats:
  url: ""
  embedded:
    listen: 127.0.0.1:$port
    store_dir: $tmp/jetstream
    jetstream: true
subjects:
  prefix: trigger
  queue: trigger-workers
scripts:
  dir: ""
functions:
  - ref: audit_new_servers
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec:
      command: ["true"]
  - ref: quota
    trigger_type: PRE_CREATE
    trigger_options: [ANY]
    exec:
      command: ["true"]
metrics:
  listen: "off"
log:
  level: info
YAML

echo "== starting worker 1 (embedded NATS server on $url)"
"$tmp/trigger-worker" run -c "$tmp/trigger-worker.yaml" >"$tmp/worker1.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if [ "$i" -eq 100 ] || ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "micro-ls: worker 1 did not start its NATS server; its log:" >&2
    cat "$tmp/worker1.log" >&2
    exit 1
  fi
  sleep 0.2
done

echo "== starting worker 2 (--server $url)"
"$tmp/trigger-worker" run -c "$tmp/trigger-worker.yaml" --server "$url" >"$tmp/worker2.log" 2>&1 &
pids+=($!)

# Wait (at most 30s) until both answer $SRV.PING.triggerbus.
ids=()
for i in $(seq 1 150); do
  mapfile -t ids < <("$nats" -s "$url" request '$SRV.PING.triggerbus' '' --replies 0 --timeout 1s --raw 2>/dev/null |
    grep -o '"id":"[^"]*"' | cut -d'"' -f4 | sort -u)
  if [ "${#ids[@]}" -ge 2 ]; then break; fi
  if [ "$i" -eq 150 ]; then
    echo "micro-ls: ${#ids[@]} of 2 workers answer \$SRV.PING.triggerbus; their logs:" >&2
    cat "$tmp/worker1.log" "$tmp/worker2.log" >&2
    exit 1
  fi
  sleep 0.2
done

echo
echo "== nats micro ls"
"$nats" -s "$url" micro ls
echo
echo "== nats micro info triggerbus        (the first instance to answer)"
"$nats" -s "$url" micro info triggerbus
for id in "${ids[@]}"; do
  echo
  echo "== nats micro info triggerbus $id"
  "$nats" -s "$url" micro info triggerbus "$id"
done
echo
echo "== nats micro stats triggerbus"
"$nats" -s "$url" micro stats triggerbus
