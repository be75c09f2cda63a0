#!/usr/bin/env bash
# Checks the Prometheus files of deploy/ with promtool:
#   promtool check rules  deploy/prometheus/alerts.yml
#   promtool check config deploy/prometheus/prometheus.yml (which loads alerts.yml)
# Once promtool is on PATH, `go test ./test/deploy` (TestPromtool) runs the
# same two checks.
#
# promtool comes with Debian's "prometheus" package; when it is missing the
# script installs that package with apt-get (as root, or through sudo). On a
# machine with an init system the package also enables a Prometheus service;
# `systemctl disable --now prometheus` stops it if it is not wanted.
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
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

echo "== $(promtool --version 2>&1 | head -n 1)"
echo "== promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml
echo "== promtool check config deploy/prometheus/prometheus.yml"
promtool check config deploy/prometheus/prometheus.yml
