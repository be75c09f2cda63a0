// Package deploy checks the deployment files against the code: the Grafana
// dashboard and the Prometheus alert rules only query metrics a real worker
// exports, and the Prometheus, Grafana and docker-compose files are well
// formed and agree with each other; the systemd unit runs the worker and is
// hardened (verified by systemd-analyze when it is on PATH). It needs neither Docker nor network
// access; every alert has promtool unit tests (deploy/prometheus/alerts_test.yml)
// that make it fire and not fire. When promtool is on PATH it also runs
// promtool on the Prometheus files and those tests (scripts/check-deploy.sh,
// run by .ci/run, installs it and runs it directly).
//
// The tests are in _test.go files; this package has no API. Run them with
//
//	go test ./test/deploy
package deploy
