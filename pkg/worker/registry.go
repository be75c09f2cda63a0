package worker

// The PRE registry tells the SDK's Decide (pkg/client) which PRE subjects
// have trigger functions, when no worker answers: registered means refused
// (NO_WORKER), not registered means allowed (NO_TRIGGER).
//
// Layout: the JetStream key-value bucket <PREFIX>_REGISTRY has one key per
// PRE type and option, <TYPE>.<OPTION> (ANY for a type's wildcard
// functions). Its value lists the registrations of every worker instance
// that has functions there:
//
//	{"functions": ["deny_net"], "updatedMs": 1764921600000,
//	 "instances": {"node-1-5f3a9c2e": {"functions": ["deny_net"], "seenMs": 1764921600000, "host": "node-1"}}}
//
// A worker changes only its own instance's registration, by compare-and-swap
// on the key's revision (Create for a new key, Update with the revision it
// read, Delete with that revision once no instance is left), retrying on a
// conflict. Two workers writing one key at once therefore never lose each
// other's registration, and a key exists exactly while some instance
// registers functions for it.
//
// One key per subject, rather than one per subject and instance
// (<TYPE>.<OPTION>.<instance>), keeps the reader a Get of one literal key,
// the read the SDK has always made:
//   - buckets written by earlier workers (values without "instances") are
//     read as before, and still refuse;
//   - the orchestrator needs no permission beyond the direct get by subject
//     it has (deploy/nats): a per-instance layout needs a wildcard lookup (a
//     consumer, or a next-by-subject get) on every "no responders";
//   - "is anything registered" is one atomic read, not a scan racing writes.
// The price is contention while many workers start at once (bounded retries;
// the refresh loop retries what a start could not write, from 250ms on) and
// a value that grows with the instances nobody pruned.
//
// Nothing expires by time alone: the bucket has no TTL, and a worker that
// stops leaves its registrations, so that a dead fleet still makes callers
// refuse. A running worker rewrites its own registrations every
// [Config.RegistryRefresh] with a new seenMs, which tells an operator a live
// instance from a gone one; `trigger-worker registry prune` removes the
// registrations of gone instances ([PruneRegistry]).
//
// A value without "instances" (written before this layout) is read as the
// registration of the pseudo-instance [LegacyInstance], last seen at its
// updatedMs. Workers keep it as it is (they add and remove their own
// registrations beside it); only a prune removes it.
//
// Lock order: Worker.mu, then registry.mu.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mathrand "math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// DefaultRegistryRefresh is how often a worker rewrites its registrations
// with a new last-seen time when [Config.RegistryRefresh] is 0.
const DefaultRegistryRefresh = time.Minute

// LegacyInstance is the instance name under which a registration written
// by a worker without instance names (a value with no "instances") is read.
// It cannot be the name of a worker instance.
const LegacyInstance = "_legacy"

// instanceName is the pattern of [Config.Instance].
var instanceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ErrBadInstance: [Config.Instance] is not a valid instance name.
var ErrBadInstance = errors.New("worker: bad instance name")

// validInstance checks an instance name.
func validInstance(s string) error {
	if !instanceName.MatchString(s) {
		return fmt.Errorf("%w %q: want letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 bytes", ErrBadInstance, s)
	}
	return nil
}

// DefaultInstance returns a new instance name: the host name (its
// characters outside the instance alphabet replaced by '-') and a random
// suffix, such as "node-1-5f3a9c2e". Each call returns another name, so a
// restarted process is a new instance.
func DefaultInstance() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '-'
	}, host)
	host = strings.TrimLeft(host, "._-")
	if len(host) > 100 {
		host = host[:100]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return cmp.Or(host, "worker") + "-" + hex.EncodeToString(b[:])
}

// RegistryEntry is the value of a key of the PRE registry.
type RegistryEntry struct {
	// Functions are the refs of every instance's functions for the key,
	// sorted: what readers of the first layout read.
	Functions []string `json:"functions"`
	// UpdatedMs is when the value was last written, Unix milliseconds.
	UpdatedMs int64 `json:"updatedMs"`
	// Instances are the registrations by worker instance name.
	Instances map[string]RegistryInstance `json:"instances,omitempty"`
}

// RegistryInstance is one worker instance's registration for a key.
type RegistryInstance struct {
	// Functions are the refs of the instance's functions for the key, sorted.
	Functions []string `json:"functions"`
	// SeenMs is when the instance last wrote the registration, Unix
	// milliseconds.
	SeenMs int64 `json:"seenMs"`
	// Host is the host name of the instance's process, if known.
	Host string `json:"host,omitempty"`
}

// decodeEntry reads a registry value stored at stored. A value without
// instances, or one that cannot be read, is the registration of
// [LegacyInstance]: the key exists, so something is registered.
func decodeEntry(data []byte, stored time.Time) RegistryEntry {
	var e RegistryEntry
	if err := json.Unmarshal(data, &e); err != nil {
		e = RegistryEntry{}
	}
	if len(e.Instances) == 0 {
		seen := e.UpdatedMs
		if seen <= 0 {
			seen = stored.UnixMilli()
		}
		e.Instances = map[string]RegistryInstance{LegacyInstance: {Functions: e.Functions, SeenMs: seen}}
	}
	return e
}

// encode sets Functions to the union of the instances' functions and
// UpdatedMs to now, and marshals e.
func (e *RegistryEntry) encode(now time.Time) []byte {
	var refs []string
	for _, in := range e.Instances {
		refs = append(refs, in.Functions...)
	}
	slices.Sort(refs)
	e.Functions = slices.Compact(refs)
	if e.Functions == nil {
		e.Functions = []string{}
	}
	e.UpdatedMs = now.UnixMilli()
	data, _ := json.Marshal(e) // strings, ints and maps of them always marshal
	return data
}

// casAttempts bounds the compare-and-swap attempts on one key.
const casAttempts = 64

// casConflict reports whether err is a compare-and-swap conflict: the key
// changed since it was read.
func casConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// modifyEntry applies change to the entry of key (an empty one when the
// key does not exist) and writes the result with a compare-and-swap on the
// revision it read, reading again after a conflict. change returns false
// to leave the key as it is; it may run several times. An entry left
// without instances deletes the key.
func modifyEntry(ctx context.Context, kv jetstream.KeyValue, key string, change func(*RegistryEntry) bool) error {
	for attempt := range casAttempts {
		e := RegistryEntry{Instances: map[string]RegistryInstance{}}
		var rev uint64
		kve, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("get %s: %w", key, err)
		default:
			e, rev = decodeEntry(kve.Value(), kve.Created()), kve.Revision()
		}
		if !change(&e) {
			return nil
		}
		switch {
		case len(e.Instances) == 0 && rev == 0:
			return nil
		case len(e.Instances) == 0:
			err = kv.Delete(ctx, key, jetstream.LastRevision(rev))
		case rev == 0:
			_, err = kv.Create(ctx, key, e.encode(time.Now()))
		default:
			_, err = kv.Update(ctx, key, e.encode(time.Now()), rev)
		}
		if err == nil {
			return nil
		}
		if !casConflict(err) {
			return fmt.Errorf("write %s: %w", key, err)
		}
		// A jittered pause, growing to 50 ms, lets the writers of a key
		// that start together take turns.
		pause := time.Duration(1+mathrand.IntN(min(2<<attempt, 50))) * time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %s: %w", key, ctx.Err())
		case <-time.After(pause):
		}
	}
	return fmt.Errorf("write %s: %d compare-and-swap conflicts in a row", key, casAttempts)
}

// registry keeps this worker instance's registrations in the PRE registry.
type registry struct {
	nc       *nats.Conn
	scheme   subjects.Scheme
	instance string
	host     string
	replicas int // of a bucket this worker creates; <= 0 means 1
	log      *slog.Logger
	failures prometheus.Counter // failed writes (trigger_registry_write_failures_total); may be nil
	kick     chan struct{}      // a failed register asks runRefresh to retry now

	mu   sync.Mutex          // held by update and refresh for their whole run
	kv   jetstream.KeyValue  // nil until the bucket is opened, and after a failed write
	want map[string][]string // this instance's registrations: key -> sorted refs
	drop map[string]bool     // keys this instance's registration is still to be removed from
}

func newRegistry(nc *nats.Conn, scheme subjects.Scheme, instance string, replicas int, log *slog.Logger, failures prometheus.Counter) *registry {
	host, _ := os.Hostname()
	return &registry{nc: nc, scheme: scheme, instance: instance, host: host, replicas: max(replicas, 1), log: log,
		failures: failures, kick: make(chan struct{}, 1), want: map[string][]string{}, drop: map[string]bool{}}
}

// failed counts a failed registry write.
func (r *registry) failed() {
	if r.failures != nil {
		r.failures.Inc()
	}
}

// retrySoon asks the refresh loop to retry a failed write soon, without
// waiting for the next refresh: until the write succeeds, clients that
// watch the registry skip this worker's subjects.
func (r *registry) retrySoon() {
	select {
	case r.kick <- struct{}{}:
	default: // a retry is already asked for
	}
}

// preKeys returns the registry keys of the PRE functions of set with their
// refs.
func preKeys(set *matcher.Set) map[string][]string {
	want := make(map[string][]string)
	for _, e := range set.Entries() {
		if !e.Type.IsPre() {
			continue
		}
		for _, o := range e.Options {
			k := subjects.RegistryKey(e.Type.Name, o)
			want[k] = append(want[k], e.Ref)
		}
	}
	for k := range want {
		slices.Sort(want[k])
		want[k] = slices.Compact(want[k])
	}
	return want
}

// bucketLocked opens the registry bucket, creating it if needed. An
// existing bucket is not updated: an update carries replicas and no
// placement, and would scale down a bucket an operator made with more
// replicas than this worker's (it keeps its placement either way).
func (r *registry) bucketLocked(ctx context.Context) (jetstream.KeyValue, error) {
	if r.kv != nil {
		return r.kv, nil
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return nil, fmt.Errorf("worker: registry: %w", err)
	}
	bucket := r.scheme.RegistryBucket()
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "triggerbus: PRE subjects that have trigger functions, by worker instance",
			History:     1,
			Replicas:    r.replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another worker created it meanwhile, with other replicas.
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("worker: registry bucket %s: %w", r.scheme.RegistryBucket(), err)
	}
	r.kv = kv
	return kv, nil
}

// register makes this instance's registrations those of the PRE functions
// of set: it adds or refreshes the keys set has, and notes every other key
// this instance is in for [registry.unregisterStale]. Registrations of
// other instances are never touched.
//
// The worker registers before it subscribes, and unregisters after it has
// unsubscribed: a key is in the bucket for as long as a subscription of
// this worker may answer its subject. The SDK, which skips the request for
// a subject without a key (pkg/client), therefore skips no worker that was
// subscribed before it saw the key.
func (r *registry) register(ctx context.Context, set *matcher.Set) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	want := preKeys(set)
	for k := range r.want {
		if _, ok := want[k]; !ok {
			r.drop[k] = true
		}
	}
	r.want = want
	err := r.registerLocked(ctx)
	if err != nil {
		r.failed()
		r.retrySoon()
	}
	return err
}

// registerLocked writes r.want and notes the keys to drop; r.mu is held.
func (r *registry) registerLocked(ctx context.Context) error {
	want := r.want
	kv, err := r.bucketLocked(ctx)
	if err != nil {
		return err
	}
	// Keys this instance name registered before this process knew of it
	// (a restart under a configured name) are found by listing them all.
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		r.kv = nil
		return fmt.Errorf("worker: registry keys: %w", err)
	}
	for k := range keys.Keys() {
		if _, ok := want[k]; !ok {
			r.drop[k] = true
		}
	}
	for k := range want {
		delete(r.drop, k)
	}
	err = r.writeLocked(ctx, kv)
	if err != nil {
		r.kv = nil // opened again next time, in case the bucket went
	}
	return err
}

// unregisterStale removes this instance from the keys [registry.register]
// found it no longer has.
func (r *registry) unregisterStale(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.drop) == 0 {
		return nil
	}
	kv, err := r.bucketLocked(ctx)
	if err != nil {
		return err
	}
	err = r.dropLocked(ctx, kv)
	if err != nil {
		r.kv = nil
		r.failed()
		r.retrySoon()
	}
	return err
}

// refresh rewrites this instance's registrations with a new last-seen
// time, adding back any a prune removed, and retries removals that failed.
func (r *registry) refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	kv, err := r.bucketLocked(ctx)
	if err != nil {
		return err
	}
	return r.syncLocked(ctx, kv)
}

// syncLocked writes r.want and removes this instance from the keys of
// r.drop.
func (r *registry) syncLocked(ctx context.Context, kv jetstream.KeyValue) error {
	err := errors.Join(r.writeLocked(ctx, kv), r.dropLocked(ctx, kv))
	if err != nil {
		r.kv = nil // opened again next time, in case the bucket went
	}
	return err
}

// writeLocked writes this instance's registration in every key of r.want.
func (r *registry) writeLocked(ctx context.Context, kv jetstream.KeyValue) error {
	now := time.Now().UnixMilli()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(r.want)) {
		mine := RegistryInstance{Functions: r.want[k], SeenMs: now, Host: r.host}
		err := modifyEntry(ctx, kv, k, func(e *RegistryEntry) bool {
			e.Instances[r.instance] = mine
			return true
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("worker: registry: %w", err))
		}
	}
	return errors.Join(errs...)
}

// dropLocked removes this instance's registration from every key of r.drop.
func (r *registry) dropLocked(ctx context.Context, kv jetstream.KeyValue) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(r.drop)) {
		err := modifyEntry(ctx, kv, k, func(e *RegistryEntry) bool {
			if _, ok := e.Instances[r.instance]; !ok {
				return false
			}
			delete(e.Instances, r.instance)
			return true
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("worker: registry: remove %s: %w", r.instance, err))
			continue
		}
		delete(r.drop, k)
	}
	return errors.Join(errs...)
}

// Retry pauses after a failed registry write: the first retry waits
// registryRetryMin, each further one twice as long, up to the refresh
// interval.
const registryRetryMin = 250 * time.Millisecond

// runRefresh refreshes the registrations every interval until ctx ends.
// After a failed write (here, or a register that kicked it) it retries
// after registryRetryMin, doubling up to interval, and goes back to the
// interval once a write succeeds. The worker's WaitGroup owns it.
func (r *registry) runRefresh(ctx context.Context, interval time.Duration, done func()) {
	defer done()
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var backoff time.Duration // 0 while the last write succeeded
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
			if backoff == 0 {
				// A register failed: retry soon rather than at the next refresh.
				backoff = min(registryRetryMin, interval)
				timer.Reset(backoff)
			}
			continue
		}
		// As long as a register may take: a write that hangs (a publish
		// refused by a permission is never acknowledged) holds r.mu, and
		// with it Replace, until then.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.refresh(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 0
			timer.Reset(interval)
			continue
		}
		r.failed()
		backoff = min(max(2*backoff, registryRetryMin), interval)
		r.log.Warn("registry write failed; clients that watch the registry skip this worker's subjects until it succeeds",
			"instance", r.instance, "retry_in", backoff, "err", err)
		timer.Reset(backoff)
	}
}

// Registration is one instance's functions for one PRE type and option,
// as the registry holds it.
type Registration struct {
	// Key is the registry key, <TYPE>.<OPTION>.
	Key string
	// Instance is the worker instance's name, or [LegacyInstance].
	Instance string
	// Functions are its function refs for the key.
	Functions []string
	// LastSeen is when the instance last wrote the registration.
	LastSeen time.Time
	// Host is the host name of the instance's process, if known.
	Host string
}

func registrations(key string, e RegistryEntry) []Registration {
	out := make([]Registration, 0, len(e.Instances))
	for name, in := range e.Instances {
		out = append(out, Registration{Key: key, Instance: name, Functions: in.Functions,
			LastSeen: time.UnixMilli(in.SeenMs), Host: in.Host})
	}
	slices.SortFunc(out, func(a, b Registration) int { return cmp.Compare(a.Instance, b.Instance) })
	return out
}

// registryKeys lists the keys of kv, sorted.
func registryKeys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("worker: registry keys: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// ListRegistry returns every registration of the registry bucket kv,
// ordered by key and instance.
func ListRegistry(ctx context.Context, kv jetstream.KeyValue) ([]Registration, error) {
	keys, err := registryKeys(ctx, kv)
	if err != nil {
		return nil, err
	}
	var out []Registration
	for _, k := range keys {
		kve, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return out, fmt.Errorf("worker: registry get %s: %w", k, err)
		}
		out = append(out, registrations(k, decodeEntry(kve.Value(), kve.Created()))...)
	}
	return out, nil
}

// PruneOptions select the registrations [PruneRegistry] removes: those of
// Instance and last seen before Before. At least one must be set.
type PruneOptions struct {
	// Instance selects one instance's registrations; "" selects every
	// instance.
	Instance string
	// Before selects the registrations last seen before it; zero selects
	// them whenever they were seen.
	Before time.Time
	// Force lets a prune remove every registration of a key. Without it,
	// when all of a key's registrations are selected, the one seen last is
	// kept: a prune never turns a subject with functions into one without
	// (NO_WORKER into NO_TRIGGER, a refusal into an allow).
	Force bool
	// DryRun reports what would be removed and changes nothing.
	DryRun bool
}

// PruneResult is what [PruneRegistry] did.
type PruneResult struct {
	// Removed are the registrations removed (with DryRun, that would be).
	Removed []Registration
	// Kept are the selected registrations kept as the last of their key.
	Kept []Registration
}

// ErrPruneSelectsAll: a prune needs an instance or a time to select by.
var ErrPruneSelectsAll = errors.New("worker: prune needs an instance or a last-seen bound")

// PruneRegistry removes the registrations o selects from the registry
// bucket kv, each key with a compare-and-swap, so that a worker writing a
// key meanwhile is never overwritten: a registration refreshed since the
// listing is no longer selected.
func PruneRegistry(ctx context.Context, kv jetstream.KeyValue, o PruneOptions) (PruneResult, error) {
	var res PruneResult
	if o.Instance == "" && o.Before.IsZero() {
		return res, ErrPruneSelectsAll
	}
	keys, err := registryKeys(ctx, kv)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, k := range keys {
		var removed, kept []Registration
		err := modifyEntry(ctx, kv, k, func(e *RegistryEntry) bool {
			removed, kept = pruneEntry(k, e, o)
			return len(removed) > 0 && !o.DryRun
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("worker: registry prune: %w", err))
			continue
		}
		res.Removed = append(res.Removed, removed...)
		res.Kept = append(res.Kept, kept...)
	}
	return res, errors.Join(errs...)
}

// pruneEntry removes the registrations o selects from e and returns them,
// with the one kept as the last of the key.
func pruneEntry(key string, e *RegistryEntry, o PruneOptions) (removed, kept []Registration) {
	var sel []Registration
	for _, r := range registrations(key, *e) {
		if (o.Instance == "" || r.Instance == o.Instance) && (o.Before.IsZero() || r.LastSeen.Before(o.Before)) {
			sel = append(sel, r)
		}
	}
	if len(sel) == len(e.Instances) && len(sel) > 0 && !o.Force {
		last := slices.MaxFunc(sel, func(a, b Registration) int {
			return cmp.Or(a.LastSeen.Compare(b.LastSeen), cmp.Compare(a.Instance, b.Instance))
		})
		kept = []Registration{last}
		sel = slices.DeleteFunc(sel, func(r Registration) bool { return r.Instance == last.Instance })
	}
	for _, r := range sel {
		delete(e.Instances, r.Instance)
	}
	return sel, kept
}
