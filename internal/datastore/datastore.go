package datastore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxBytes is the largest map a function may keep when
// [Config.MaxBytes] is 0: 64 KiB of JSON.
const DefaultMaxBytes = 64 << 10

var (
	// ErrNoJetStream is returned by a [Store] not bound to JetStream: the
	// worker's NATS server has none (or the worker has not connected).
	ErrNoJetStream = errors.New("datastore: the worker has no JetStream (dataStore needs a NATS server with JetStream enabled)")
	// ErrTooLarge is returned for a map larger than [Config.MaxBytes].
	ErrTooLarge = errors.New("datastore: private data map too large")
)

// Config configures a [Store].
type Config struct {
	// Bucket is the key-value bucket, such as TRIGGER_DATASTORE
	// (subjects.Scheme.DataStoreBucket). Required.
	Bucket string
	// MaxBytes caps the JSON of one function's map; 0 means
	// [DefaultMaxBytes]. The bucket's maximum value size is set to it.
	MaxBytes int
	// Replicas is the bucket's number of replicas; 0 means 1.
	Replicas int
}

// Store is a data store on a JetStream key-value bucket, which it creates
// (or updates) on first use. It is safe for concurrent use; it holds no
// resource of its own (the connection is its binder's).
type Store struct {
	cfg Config

	mu sync.Mutex
	js jetstream.JetStream // nil until Bind
	kv jetstream.KeyValue  // opened on first use
}

// New returns a Store not yet bound to JetStream: its calls fail with
// [ErrNoJetStream] until [Store.Bind]. It does no I/O.
func New(cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("datastore: bucket is empty")
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("datastore: max bytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	return &Store{cfg: cfg}, nil
}

// Bind makes s keep its maps through js, once the worker knows its NATS
// server has JetStream.
func (s *Store) Bind(js jetstream.JetStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.js, s.kv = js, nil
}

// MaxBytes is the largest map s keeps, in bytes of JSON.
func (s *Store) MaxBytes() int { return s.cfg.MaxBytes }

// bucket opens the bucket, creating it if needed.
func (s *Store) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	if s.js == nil {
		return nil, ErrNoJetStream
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       s.cfg.Bucket,
		Description:  "triggerbus: private data maps of FDL scripts (dataStore), one key per function ref",
		History:      1,
		MaxValueSize: int32(min(s.cfg.MaxBytes, 1<<30)),
		Replicas:     s.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("datastore: bucket %s: %w", s.cfg.Bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// plainKey matches the function refs that are keys as they are.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Key is the key of a function's map: the ref itself when it is made of
// letters, digits, '_' and '-', else '=' and the ref in unpadded base64url,
// so that every ref has a valid key of its own.
func Key(function string) string {
	if plainKey.MatchString(function) {
		return function
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(function))
}

// Get returns the map of function as it was stored, nil when it has none.
func (s *Store) Get(ctx context.Context, function string) ([]byte, error) {
	kv, err := s.bucket(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, Key(function))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("datastore: get %s: %w", function, err)
	}
	return e.Value(), nil
}

// Put replaces the map of function with data, the map's JSON.
func (s *Store) Put(ctx context.Context, function string, data []byte) error {
	if len(data) > s.cfg.MaxBytes {
		return fmt.Errorf("%w: %d bytes of JSON, the limit is %d", ErrTooLarge, len(data), s.cfg.MaxBytes)
	}
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, Key(function), data); err != nil {
		return fmt.Errorf("datastore: put %s: %w", function, err)
	}
	return nil
}

// Delete removes the map of function; removing none is no error.
func (s *Store) Delete(ctx context.Context, function string) error {
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	if err := kv.Purge(ctx, Key(function)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("datastore: delete %s: %w", function, err)
	}
	return nil
}
