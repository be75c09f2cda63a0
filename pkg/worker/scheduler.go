package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// scheduler fires the ticks of the SCHEDULED functions. Every worker of a
// fleet runs one and publishes every tick to the event stream with a
// message id derived from the function and the tick time; JetStream keeps
// one copy, so a tick fires once across the fleet however many workers
// run, and is not lost while any one runs.
//
// Catch-up rule: when a worker starts (or its functions are reloaded), the
// latest tick that fell due less than catchUp ago is fired late; older
// ticks are skipped, never replayed in a burst. While it runs, a tick that
// comes due while the worker is late (a slow publish, a paused process) is
// fired late too, within the same catchUp. catchUp is half the stream's
// duplicate window (at most a minute), so a late tick that another worker
// already fired is still recognised as a duplicate.
type scheduler struct {
	w        *Worker
	catchUp  time.Duration
	wakeCh   chan struct{} // buffered 1: one pending wake-up is enough
	stopCh   chan struct{}
	stopOnce sync.Once
	next     map[string]time.Time // by ref and schedule
}

func newScheduler(w *Worker) *scheduler {
	return &scheduler{
		w:       w,
		catchUp: min(w.durable.cfg.DuplicateWindow/2, time.Minute),
		wakeCh:  make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		next:    map[string]time.Time{},
	}
}

func (s *scheduler) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *scheduler) stop() { s.stopOnce.Do(func() { close(s.stopCh) }) }

// run fires ticks until stop. The worker's WaitGroup owns it.
func (s *scheduler) run() {
	defer s.w.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.tick(time.Now())
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wakeCh:
		case <-s.stopCh:
			return
		}
	}
}

// tick fires what is due at now and returns how long to wait for the next.
// Due ticks fire oldest first; a tick that fell due catchUp ago or more is
// skipped. A publish can take a while, so it stops early when the
// scheduler is stopped.
func (s *scheduler) tick(now time.Time) time.Duration {
	wait := time.Hour
	seen := map[string]bool{}
	// Start and Replace change the functions and the consumer that follows
	// them under the worker's lock: reading the set under it (not during the
	// publishes) means a tick is published only once the consumer takes its
	// subject. Before, the stream (interest retention) would drop it.
	s.w.mu.Lock()
	set := s.w.state.Load().set
	s.w.mu.Unlock()
	for _, e := range set.Entries() {
		sc := e.Schedule
		if sc == nil {
			continue
		}
		key := e.Ref + "\x00" + sc.String()
		seen[key] = true
		n, ok := s.next[key]
		if !ok {
			n = s.first(sc, now)
		} else if now.Sub(n) >= s.catchUp {
			n = sc.Next(now.Add(-s.catchUp))
		}
		for !n.IsZero() && !n.After(now) {
			select {
			case <-s.stopCh:
				return time.Hour
			default:
			}
			s.fire(e.Ref, sc, n, now)
			n = sc.Next(n)
		}
		if n.IsZero() {
			continue // a cron expression that never matches
		}
		s.next[key] = n
		wait = min(wait, n.Sub(now))
	}
	for k := range s.next {
		if !seen[k] {
			delete(s.next, k)
		}
	}
	return max(wait, time.Millisecond)
}

// first is the tick a new schedule starts from: the latest tick that fell
// due less than catchUp ago (so a tick missed while no worker ran fires
// late, once, and one another worker already fired is de-duplicated by the
// stream), else the next one.
func (s *scheduler) first(sc *schedule.Schedule, now time.Time) time.Time {
	n := sc.Next(now.Add(-s.catchUp))
	for !n.IsZero() && !n.After(now) {
		after := sc.Next(n)
		if after.IsZero() || after.After(now) {
			break
		}
		n = after
	}
	return n
}

// ownTick gives a tick the billing entity and customer its schedule
// belongs to: beUUID and customer.resourceUUID, as FCO gave the scheduled
// code of a billing entity.
func ownTick(ev *event.Event, o schedule.Owner) {
	ev.BEUUID = o.BEUUID
	if o.CustomerUUID != "" {
		ev.Customer, _ = json.Marshal(map[string]string{"resourceUUID": o.CustomerUUID})
	}
}

// fire publishes the tick of ref at tick to the event stream.
func (s *scheduler) fire(ref string, sc *schedule.Schedule, tick, now time.Time) {
	w := s.w
	input, _ := json.Marshal([]int64{tick.UnixMilli(), sc.Frequency(tick).Milliseconds(), now.UnixMilli()})
	ev := event.Event{
		ID:            event.NewID(),
		TriggerType:   "SCHEDULED",
		TriggerOption: subjects.Any,
		TimeStamp:     now.UnixMilli(),
		Input:         input,
	}
	ownTick(&ev, sc.Owner())
	data, err := ev.Encode()
	if err != nil {
		w.log.Error("encode tick", "function", ref, "err", err)
		return
	}
	// The event subject <prefix>.SCHEDULED.ANY (Pattern would give the
	// wildcard <prefix>.SCHEDULED.*, which no worker accepts as an event).
	subject, err := w.scheme.Build("SCHEDULED", subjects.Any)
	if err != nil {
		w.log.Error("tick subject", "function", ref, "err", err)
		return
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(HeaderSchedule, ref)
	tickID := "sched." + ref + "." + strconv.FormatInt(tick.UnixMilli(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := w.durable.js.PublishMsg(ctx, m, jetstream.WithMsgID(tickID))
	if err != nil {
		w.log.Warn("tick not published", "function", ref, "tick", tick, "err", err)
		return
	}
	w.log.Debug("tick published", "function", ref, "tick", tick, "duplicate", ack.Duplicate)
}
