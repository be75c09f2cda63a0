#!/usr/bin/env bash
# Checks the Prometheus files of deploy/ with promtool (.ci/run runs it):
#   promtool check rules  deploy/prometheus/alerts.yml
#   promtool check config deploy/prometheus/prometheus.yml (which loads alerts.yml)
#   promtool test rules   deploy/prometheus/alerts_test.yml (the alerts' unit tests)
# Once promtool is on PATH, `go test ./test/deploy` (TestPromtool) runs the
# same checks.
#
# promtool comes with Debian's "prometheus" package; when it is missing the
# script installs that package with apt-get (as root, or through sudo). The
# install does not start the Prometheus service (a policy-rc.d that refuses
# it is in place during the install when the machine has none); on a machine
# with systemd the package still enables the service for the next boot:
# `systemctl disable prometheus` if it is not wanted.
#
# Usage: scripts/check-deploy.sh        (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "check-deploy: promtool is not on PATH and apt-get is not available; install Prometheus' promtool" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "== installing promtool (Debian package prometheus)"
  # Refuse service starts during the install, unless the machine already has
  # a policy of its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # Quiet, but apt's errors (stderr) are shown; its output is shown on failure.
  log=$(mktemp)
  if ! "${sudo[@]}" apt-get update -qq >"$log" ||
    ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >>"$log"; then
    cat "$log" >&2; rm -f "$log"
    echo "check-deploy: installing Debian's prometheus package failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

echo "== $(promtool --version 2>&1 | head -n 1)"
echo "== promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml
echo "== promtool check config deploy/prometheus/prometheus.yml"
promtool check config deploy/prometheus/prometheus.yml
echo "== promtool test rules deploy/prometheus/alerts_test.yml"
promtool test rules deploy/prometheus/alerts_test.yml
