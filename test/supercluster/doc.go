// Package supercluster holds the tests of triggerbus across regions: a
// fleet of workers in two NATS clusters joined by gateways (a supercluster
// started in the test process by internal/natstest, on 127.0.0.1 with
// random ports). They show that PRE requests are answered by the workers of
// the caller's cluster while it has some, and by the other cluster's when
// they stop or are lost; that the SDK still tells "no worker" from "no
// trigger" through a registry bucket placed in the other cluster; and that
// durable POST events published in both clusters are each handled once by
// the workers of both, whichever cluster holds the event stream. See
// "Across regions" in docs/operations.md.
//
// The tests are in _test.go files; this package has no API. Run them with
//
//	go test -race ./test/supercluster
package supercluster
