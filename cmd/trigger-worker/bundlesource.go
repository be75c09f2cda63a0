package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// bundleRetry is how often a worker in bundle mode tries again to open the
// function store or watch its head when that failed.
const bundleRetry = time.Second

// bundleSource serves the fleet's function bundle (bundle.source: bundle):
// it follows the active revision, and loads each new one off the hot path
// with the one validation of loadFunctions, swapping it in whole or not at
// all. A revision that does not load here is refused: the worker keeps
// the revision it serves, and says so (log, reload metrics, /readyz).
//
// One goroutine runs it (run); its fields are that goroutine's.
type bundleSource struct {
	cfg    config.Config // the non-function configuration
	cf     *commonFlags  // re-read on SIGHUP
	nc     *nats.Conn
	w      *worker.Worker
	store  lua.DataStore
	status *loadStatus
	rm     *worker.ReloadMetrics
	log    *slog.Logger

	cur    *loaded
	curRev uint64
	dir    string // where cur's files are; "" when none
}

// emptyLoaded is what a worker in bundle mode serves until it has a
// revision: nothing.
func emptyLoaded() *loaded {
	set, _ := matcher.Build(nil)
	return &loaded{set: set}
}

// run follows the active revision until ctx is done and returns the
// functions served then (the caller closes them). A SIGHUP on hup
// re-reads the configuration and applies the active revision again with
// it.
func (b *bundleSource) run(ctx context.Context, hup <-chan os.Signal) *loaded {
	defer func() {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}()
	var (
		st     *bundle.Store
		wt     *bundle.Watcher
		active uint64
	)
	defer func() {
		if wt != nil {
			_ = wt.Stop()
		}
	}()
	retry := time.NewTicker(bundleRetry)
	defer retry.Stop()
	for {
		if wt == nil {
			st, wt = b.follow(ctx)
		}
		var revs <-chan uint64
		if wt != nil {
			revs = wt.Revisions()
		}
		select {
		case <-ctx.Done():
			return b.cur
		case <-retry.C:
		case rev, ok := <-revs:
			if !ok { // the watch ended: watch again
				_ = wt.Stop()
				wt = nil
				continue
			}
			active = rev
			b.apply(ctx, st, rev, false)
		case <-hup:
			b.rereadConfig()
			if st != nil && active != 0 {
				b.apply(ctx, st, active, true)
			}
		}
	}
}

// follow opens the store and watches its head; nil, nil (recorded in the
// status) when either fails, to be tried again.
func (b *bundleSource) follow(ctx context.Context) (*bundle.Store, *bundle.Watcher) {
	scheme, err := subjects.NewScheme(b.cfg.Subjects.Prefix)
	if err != nil {
		b.waiting(err.Error())
		return nil, nil
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		b.waiting(err.Error())
		return nil, nil
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := bundle.Open(octx, js, scheme, bundle.Options{History: b.cfg.Bundle.History})
	if err != nil {
		b.waiting(fmt.Sprintf("waiting for a revision of the function bundle: %v", err))
		return nil, nil
	}
	wt, err := st.Watch(ctx)
	if err != nil {
		b.waiting(fmt.Sprintf("cannot watch the active revision: %v", err))
		return nil, nil
	}
	if b.curRev == 0 {
		b.waiting("waiting for a revision of the function bundle to be activated (trigger-worker functions push, activate)")
	}
	return st, wt
}

// waiting records why there is no revision to serve yet, when there is
// none; a worker serving one keeps serving it.
func (b *bundleSource) waiting(reason string) {
	if b.curRev != 0 {
		b.log.Warn("function bundle", "err", reason)
		return
	}
	if b.status.setWaiting(reason) {
		b.log.Warn("not ready: no revision of the function bundle", "reason", reason)
	}
}

// rereadConfig re-reads the configuration file for the next load; a file
// that does not load keeps the current configuration, reported as a
// failed reload.
func (b *bundleSource) rereadConfig() {
	cfg, err := b.cf.load()
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			err = ue.err
		}
		b.refuse(b.curRev, splitJoined(err))
		return
	}
	if cfg.NATS != b.cfg.NATS || cfg.Subjects != b.cfg.Subjects || cfg.Bundle.Source != b.cfg.Bundle.Source {
		b.log.Warn("reload: nats, subjects and bundle.source changes take a restart")
		cfg.NATS, cfg.Subjects, cfg.Bundle.Source = b.cfg.NATS, b.cfg.Subjects, b.cfg.Bundle.Source
	}
	b.cfg = cfg
}

// apply loads revision rev and swaps it in, unless it is the one served
// (force loads it again, after a SIGHUP).
func (b *bundleSource) apply(ctx context.Context, st *bundle.Store, rev uint64, force bool) {
	// Until the worker serves rev, it leaves durable events to workers
	// that do.
	if err := b.w.SetActive(ctx, rev); err != nil {
		b.log.Warn("durable consumer", "err", err)
	}
	if rev == b.curRev && !force {
		return
	}
	start := time.Now()
	next, dir, problems := b.load(ctx, st, rev)
	if len(problems) > 0 {
		b.refuse(rev, problems)
		return
	}
	if err := swapIn(ctx, b.w, next, rev, b.log); err != nil {
		os.RemoveAll(dir)
		b.refuse(rev, []error{err})
		return
	}
	now := time.Now()
	b.rm.Succeeded(now)
	b.rm.Revision.Set(float64(rev))
	b.status.appliedRevision(now, rev)
	b.log.Info("function bundle revision loaded", "revision", rev, "functions", next.set.Len(),
		"subjects", b.w.Subjects(), "duration", time.Since(start))
	closeLoaded(b.cur, "close old handlers", b.log)
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	b.cur, b.curRev, b.dir = next, rev, dir
}

// load fetches revision rev, verifies it against bundle.trusted_keys and
// loads its functions as check would, in a directory of its own.
func (b *bundleSource) load(ctx context.Context, st *bundle.Store, rev uint64) (*loaded, string, []error) {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return loadRevision(fctx, st, rev, b.cfg, b.log, b.store)
}

// loadRevision fetches revision rev, verifies it against the
// bundle.trusted_keys of cfg, writes its files to a new directory and
// loads its functions from there with the rest of cfg, all or nothing:
// the functions and the directory (the caller removes it), or the
// problems and nothing.
func loadRevision(ctx context.Context, st *bundle.Store, rev uint64, cfg config.Config, log *slog.Logger, store lua.DataStore) (*loaded, string, []error) {
	var bd *bundle.Bundle
	var err error
	if len(cfg.Bundle.TrustedKeys) > 0 {
		bd, err = verified(ctx, st, rev, cfg.Bundle.TrustedKeys)
	} else {
		bd, err = st.Fetch(ctx, rev) // the files match the manifest
	}
	if err != nil {
		return nil, "", []error{err}
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("trigger-revision-%d-", rev))
	if err != nil {
		return nil, "", []error{err}
	}
	if err := bd.WriteFiles(dir); err != nil {
		os.RemoveAll(dir)
		return nil, "", []error{err}
	}
	src, problems := definitionsConfig(cfg, dir)
	if len(problems) > 0 {
		os.RemoveAll(dir)
		return nil, "", problems
	}
	next := loadFunctions(src, log, store)
	if len(next.problems) > 0 {
		// All or nothing: loading.allow_partial is not for bundles.
		closeLoaded(next, "close the handlers of the refused revision", log)
		os.RemoveAll(dir)
		return nil, "", next.problems
	}
	return next, dir, nil
}

// refuse reports revision rev that this worker did not load.
func (b *bundleSource) refuse(rev uint64, problems []error) {
	for _, p := range problems {
		b.log.Error("function bundle: problem", "revision", rev, "err", p)
	}
	b.log.Error("function bundle revision refused on this worker, keeping the functions served",
		"revision", rev, "serving_revision", b.curRev, "problems", len(problems))
	b.rm.Failed()
	tagged := make([]error, len(problems))
	for i, p := range problems {
		tagged[i] = fmt.Errorf("revision %d: %w", rev, p)
	}
	b.status.failed(time.Now(), tagged)
}
