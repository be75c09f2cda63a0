package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/matcher"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// RegistryEntry is the value of a key of the PRE registry: the functions
// registered for a PRE type and option.
type RegistryEntry struct {
	Functions []string `json:"functions"`
	UpdatedMs int64    `json:"updatedMs"`
}

// registry keeps the PRE registry bucket current. Entries record what the
// fleet's configuration registers, not which workers live: a stopped worker
// leaves them, so that a dead fleet is told apart from a subject without
// functions and a deny trigger never turns into a silent allow.
type registry struct {
	nc     *nats.Conn
	scheme subjects.Scheme
	log    *slog.Logger
}

func newRegistry(nc *nats.Conn, scheme subjects.Scheme, log *slog.Logger) *registry {
	return &registry{nc: nc, scheme: scheme, log: log}
}

// update writes a key for every PRE type and option of set and deletes the
// keys of those it no longer has.
func (r *registry) update(ctx context.Context, set *matcher.Set) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("worker: registry: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      r.scheme.RegistryBucket(),
		Description: "triggerbus: PRE subjects that have trigger functions",
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("worker: registry bucket %s: %w", r.scheme.RegistryBucket(), err)
	}
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
	var errs []error
	now := time.Now().UnixMilli()
	for k, refs := range want {
		slices.Sort(refs)
		val, _ := json.Marshal(RegistryEntry{Functions: refs, UpdatedMs: now})
		if _, err := kv.Put(ctx, k, val); err != nil {
			errs = append(errs, fmt.Errorf("worker: registry put %s: %w", k, err))
		}
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("worker: registry keys: %w", err))
		return errors.Join(errs...)
	}
	for k := range keys.Keys() {
		if _, ok := want[k]; ok {
			continue
		}
		if err := kv.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("worker: registry delete %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}
