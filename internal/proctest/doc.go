// Package proctest runs programs of this module as child processes of
// end-to-end tests, and starts the in-process workers those tests share.
//
// [Build] builds a main package once per test binary and returns the path
// of the executable. The programs live in a temporary directory that
// [Main] removes, so a package that builds programs runs its tests with
//
//	func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }
//
// [Start] runs a program in a new temporary working directory with the
// test's environment minus the TRIGGER_ variables (see [Env]), collects its
// output, kills it if it still runs when the test ends, and logs its output
// if the test failed. [Run] runs a program to the end and returns its exit
// code and output:
//
//	bin := proctest.Build(t, "./cmd/trigger-worker")
//	p := proctest.Start(t, bin, "run", "-c", cfg)
//	base := p.WaitReady(t)
//	...
//	p.Stop(t) // SIGTERM, and an error unless it exits 0
//
// [WriteWorkerConfig] writes the configuration most trigger-worker
// processes of these tests run (NATS at a test server, core delivery, a
// scripts directory, metrics on a free port), with keys set on top;
// [DenyScript] is the FDL script of their usual PRE decision.
//
// [StartWorker] starts a worker in the test process and stops it when the
// test ends.
//
// Every wait is bounded by a ceiling for a loaded machine, never an
// expectation of speed. Every helper that takes a testing.TB reports
// failures at its caller's line.
package proctest
