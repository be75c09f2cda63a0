package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Keys of the head bucket.
const (
	// KeyActive names the active revision.
	KeyActive = "active"
	// KeyLatest is the last revision number given out.
	KeyLatest = "latest"
)

// objectSuffix ends the name of every revision's object: <revision>.tar.gz.
const objectSuffix = ".tar.gz"

// maxCAS bounds the compare-and-set retries of one revision number or
// activation; each retry means another writer won a round.
const maxCAS = 100

var (
	// ErrNoStore matches opening the store of a prefix that has none: no
	// revision was ever pushed.
	ErrNoStore = errors.New("bundle: no function store")
	// ErrNoRevision matches a revision that is not stored.
	ErrNoRevision = errors.New("bundle: no such revision")
)

// Options configures a [Store].
type Options struct {
	// History is how many revisions a push keeps, besides the active one;
	// 0 means 10.
	History int
	// Replicas is the replication factor of the buckets when they are
	// created; 0 means 1.
	Replicas int
	// Create makes the buckets when they do not exist; otherwise opening a
	// store that does not exist fails with [ErrNoStore].
	Create bool
	// PutTimeout bounds the steps that wait on the server on the context
	// alone when that context has no deadline: storing a revision's object
	// (it waits for the ack of every chunk) and listing the revisions (it
	// waits for a watch of the object metadata to deliver what was there
	// when it started, which a concurrent removal can keep from ever
	// happening; a listing is tried three times, a third of the bound
	// each). Without a bound either could hold a push forever. 0 means 30s.
	PutTimeout time.Duration
}

// Store is the function bundle of one subject prefix in JetStream. It is
// safe for concurrent use, also by several processes: revision numbers and
// activations are compare-and-set writes on the head bucket.
type Store struct {
	obj        jetstream.ObjectStore
	kv         jetstream.KeyValue
	history    int
	putTimeout time.Duration
}

// Open opens the store of scheme's prefix: the object store
// scheme.FunctionsBucket() and the key-value bucket
// scheme.FunctionsHeadBucket().
func Open(ctx context.Context, js jetstream.JetStream, scheme subjects.Scheme, opts Options) (*Store, error) {
	if opts.History <= 0 {
		opts.History = 10
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.PutTimeout <= 0 {
		opts.PutTimeout = 30 * time.Second
	}
	s := &Store{history: opts.History, putTimeout: opts.PutTimeout}
	var err error
	name := scheme.FunctionsBucket()
	s.obj, err = js.ObjectStore(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) && opts.Create {
		s.obj, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: name, Description: "triggerbus: revisions of the function bundle", Replicas: opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			s.obj, err = js.ObjectStore(ctx, name)
		}
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("%w: bucket %s does not exist (push a revision first)", ErrNoStore, name)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: object store %s: %w", name, err)
	}
	head := scheme.FunctionsHeadBucket()
	s.kv, err = js.KeyValue(ctx, head)
	if errors.Is(err, jetstream.ErrBucketNotFound) && opts.Create {
		s.kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: head, Description: "triggerbus: the active revision of the function bundle", History: 64, Replicas: opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			s.kv, err = js.KeyValue(ctx, head)
		}
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("%w: bucket %s does not exist (push a revision first)", ErrNoStore, head)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: key-value bucket %s: %w", head, err)
	}
	return s, nil
}

// ObjectName is the name of a revision's object in the object store.
func ObjectName(rev uint64) string { return strconv.FormatUint(rev, 10) + objectSuffix }

func parseObjectName(name string) (uint64, bool) {
	n, ok := strings.CutSuffix(name, objectSuffix)
	if !ok {
		return 0, false
	}
	rev, err := strconv.ParseUint(n, 10, 64)
	return rev, err == nil && rev > 0
}

// PushOptions are the choices of one [Store.Push].
type PushOptions struct {
	// Sign, when set, is called with the bundle once its revision and time
	// are set, to sign it (typically b.Sign(key)).
	Sign func(b *Bundle) error
	// Activate makes the revision the active one, unless a newer revision
	// became active meanwhile (a concurrent push).
	Activate bool
}

// PushResult is what a push did.
type PushResult struct {
	Revision  uint64
	Activated bool
	// Active is the active revision after the push.
	Active uint64
	// Pruned are the revisions removed beyond the history.
	Pruned []uint64
}

// Push stores b as a new revision: it takes the next revision number,
// sets b's revision and time, signs it if asked, stores it, activates it
// if asked and prunes the history. b must not be sealed yet.
func (s *Store) Push(ctx context.Context, b *Bundle, opts PushOptions) (PushResult, error) {
	if b.raw != nil {
		return PushResult{}, errors.New("bundle: push: the bundle is sealed (already pushed or signed)")
	}
	rev, err := s.next(ctx)
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{Revision: rev}
	b.Manifest.Revision = rev
	if b.Manifest.Created.IsZero() {
		b.Manifest.Created = time.Now().UTC().Truncate(time.Millisecond)
	}
	if opts.Sign != nil {
		if err := opts.Sign(b); err != nil {
			return res, err
		}
	}
	data, err := b.Encode()
	if err != nil {
		return res, err
	}
	meta := jetstream.ObjectMeta{
		Name:        ObjectName(rev),
		Description: b.Manifest.Message,
		Metadata:    map[string]string{"revision": strconv.FormatUint(rev, 10), "author": b.Manifest.Author},
	}
	putCtx, cancel := bounded(ctx, s.putTimeout)
	_, err = s.obj.Put(putCtx, meta, bytes.NewReader(data))
	cancel()
	if err != nil {
		return res, fmt.Errorf("bundle: store revision %d: %w", rev, err)
	}
	if opts.Activate {
		if res.Activated, res.Active, err = s.activateNewer(ctx, rev); err != nil {
			return res, err
		}
	} else if res.Active, err = s.Active(ctx); err != nil {
		return res, err
	}
	res.Pruned, err = s.Prune(ctx)
	return res, err
}

// next takes the next revision number with a compare-and-set on
// KeyLatest, so that concurrent pushes get distinct, increasing numbers.
// When the key is missing, numbering goes on after the stored revisions.
func (s *Store) next(ctx context.Context) (uint64, error) {
	for range maxCAS {
		e, err := s.kv.Get(ctx, KeyLatest)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			revs, err := s.Revisions(ctx)
			if err != nil {
				return 0, err
			}
			n := uint64(1)
			if len(revs) > 0 {
				n = revs[len(revs)-1] + 1
			}
			if _, err := s.kv.Create(ctx, KeyLatest, []byte(strconv.FormatUint(n, 10))); err == nil {
				return n, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("bundle: revision number: %w", err)
			}
		case err != nil:
			return 0, fmt.Errorf("bundle: revision number: %w", err)
		default:
			cur, err := parseRevision(e.Value())
			if err != nil {
				return 0, fmt.Errorf("bundle: %s: %w", KeyLatest, err)
			}
			if _, err := s.kv.Update(ctx, KeyLatest, []byte(strconv.FormatUint(cur+1, 10)), e.Revision()); err == nil {
				return cur + 1, nil
			} else if !casConflict(err) {
				return 0, fmt.Errorf("bundle: revision number: %w", err)
			}
		}
	}
	return 0, errors.New("bundle: revision number: too many concurrent pushes")
}

// bounded is ctx, or, when ctx has no deadline, ctx bounded by d.
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func casConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func parseRevision(v []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a revision number", v)
	}
	return n, nil
}

// activateNewer makes rev active unless the active revision is newer.
func (s *Store) activateNewer(ctx context.Context, rev uint64) (bool, uint64, error) {
	val := []byte(strconv.FormatUint(rev, 10))
	for range maxCAS {
		e, err := s.kv.Get(ctx, KeyActive)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := s.kv.Create(ctx, KeyActive, val); err == nil {
				return true, rev, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return false, 0, fmt.Errorf("bundle: activate %d: %w", rev, err)
			}
		case err != nil:
			return false, 0, fmt.Errorf("bundle: activate %d: %w", rev, err)
		default:
			cur, err := parseRevision(e.Value())
			if err == nil && cur >= rev {
				return false, cur, nil
			}
			if _, err := s.kv.Update(ctx, KeyActive, val, e.Revision()); err == nil {
				return true, rev, nil
			} else if !casConflict(err) {
				return false, 0, fmt.Errorf("bundle: activate %d: %w", rev, err)
			}
		}
	}
	return false, 0, fmt.Errorf("bundle: activate %d: too many concurrent activations", rev)
}

// Active returns the active revision, 0 when none is.
func (s *Store) Active(ctx context.Context) (uint64, error) {
	e, err := s.kv.Get(ctx, KeyActive)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bundle: active revision: %w", err)
	}
	rev, err := parseRevision(e.Value())
	if err != nil {
		return 0, fmt.Errorf("bundle: %s: %w", KeyActive, err)
	}
	return rev, nil
}

// Activate makes rev the active revision (a roll back or forward) and
// returns the one it replaces (0 if none). rev must be stored and read
// back whole.
func (s *Store) Activate(ctx context.Context, rev uint64) (uint64, error) {
	if _, err := s.Fetch(ctx, rev); err != nil {
		return 0, err
	}
	prev, err := s.Active(ctx)
	if err != nil {
		return 0, err
	}
	e, err := s.kv.Put(ctx, KeyActive, []byte(strconv.FormatUint(rev, 10)))
	if err != nil {
		return prev, fmt.Errorf("bundle: activate %d: %w", rev, err)
	}
	// A prune that read the head before this write may have removed rev
	// since it was fetched: put the previous revision back.
	if _, err := s.obj.GetInfo(ctx, ObjectName(rev)); errors.Is(err, jetstream.ErrObjectNotFound) {
		if prev != 0 {
			_, _ = s.kv.Update(ctx, KeyActive, []byte(strconv.FormatUint(prev, 10)), e)
		}
		return prev, fmt.Errorf("%w: revision %d was removed while it was activated", ErrNoRevision, rev)
	}
	return prev, nil
}

// Revisions returns the stored revisions, oldest first.
func (s *Store) Revisions(ctx context.Context) ([]uint64, error) {
	var infos []*jetstream.ObjectInfo
	var err error
	for range 3 {
		lctx, cancel := bounded(ctx, s.putTimeout/3)
		infos, err = s.obj.List(lctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: list revisions: %w", err)
	}
	var revs []uint64
	for _, info := range infos {
		if rev, ok := parseObjectName(info.Name); ok && !info.Deleted {
			revs = append(revs, rev)
		}
	}
	slices.Sort(revs)
	return revs, nil
}

// Fetch reads revision rev and checks that its files match its manifest
// (not its signature: see [Verify]).
func (s *Store) Fetch(ctx context.Context, rev uint64) (*Bundle, error) {
	data, err := s.obj.GetBytes(ctx, ObjectName(rev))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrNoRevision, rev)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: revision %d: %w", rev, err)
	}
	b, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("revision %d: %w", rev, err)
	}
	if b.Manifest.Revision != rev {
		return nil, fmt.Errorf("%w: object of revision %d holds revision %d", ErrInvalid, rev, b.Manifest.Revision)
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("revision %d: %w", rev, err)
	}
	return b, nil
}

// Prune removes the revisions beyond the newest History, never the active
// one, and returns those it removed, oldest first.
func (s *Store) Prune(ctx context.Context) ([]uint64, error) {
	revs, err := s.Revisions(ctx)
	if err != nil || len(revs) <= s.history {
		return nil, err
	}
	var pruned []uint64
	for _, rev := range revs[:len(revs)-s.history] {
		// Read the head before each removal: an activation may have come
		// in since the last.
		active, err := s.Active(ctx)
		if err != nil {
			return pruned, err
		}
		if rev == active {
			continue
		}
		if err := s.obj.Delete(ctx, ObjectName(rev)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return pruned, fmt.Errorf("bundle: prune revision %d: %w", rev, err)
		}
		pruned = append(pruned, rev)
	}
	return pruned, nil
}

// Watcher follows the active revision; see [Store.Watch].
type Watcher struct {
	w    jetstream.KeyWatcher
	out  chan uint64
	wg   sync.WaitGroup
	once sync.Once
}

// Watch follows the active revision: Revisions receives the active
// revision when there is one, then every revision activated after it. A
// receiver that falls behind gets the latest only. Stop ends it.
func (s *Store) Watch(ctx context.Context) (*Watcher, error) {
	kw, err := s.kv.Watch(ctx, KeyActive)
	if err != nil {
		return nil, fmt.Errorf("bundle: watch %s: %w", KeyActive, err)
	}
	// One slot: only the latest revision matters, an older one waiting is
	// replaced.
	w := &Watcher{w: kw, out: make(chan uint64, 1)}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

func (w *Watcher) run() {
	defer w.wg.Done()
	defer close(w.out)
	for e := range w.w.Updates() {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue // the end of the initial values, or a delete
		}
		rev, err := parseRevision(e.Value())
		if err != nil {
			continue
		}
		select {
		case <-w.out: // drop the older one not yet received
		default:
		}
		w.out <- rev
	}
}

// Revisions is closed after Stop, or when the watch ends with its ctx.
func (w *Watcher) Revisions() <-chan uint64 { return w.out }

// Stop ends the watch and waits for it; it is safe to call more than once.
func (w *Watcher) Stop() error {
	var err error
	w.once.Do(func() { err = w.w.Stop() })
	w.wg.Wait()
	return err
}
