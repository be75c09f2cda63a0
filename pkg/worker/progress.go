package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progressAcks tells the server that durable events are still being worked
// on, so that a long function is not redelivered to another worker while it
// runs: one goroutine (run) sends a progress signal, every interval, for
// each event running since before the last tick, instead of a goroutine and
// a ticker for every event.
type progressAcks struct {
	interval time.Duration

	mu      sync.Mutex
	tick    uint64                   // the ticks so far
	running map[jetstream.Msg]uint64 // the events running, with the tick they started after
	due     []jetstream.Msg          // signal's buffer, reused; only run's goroutine uses it
}

// newProgressAcks signals progress every fifth of ackWait (at least 50ms),
// so that an event gets its first signal within two fifths of it.
func newProgressAcks(ackWait time.Duration) *progressAcks {
	return &progressAcks{interval: max(ackWait/5, 50*time.Millisecond), running: make(map[jetstream.Msg]uint64)}
}

// add starts signalling progress for m until done(m).
func (p *progressAcks) add(m jetstream.Msg) {
	p.mu.Lock()
	p.running[m] = p.tick
	p.mu.Unlock()
}

// done stops signalling progress for m.
func (p *progressAcks) done(m jetstream.Msg) {
	p.mu.Lock()
	delete(p.running, m)
	p.mu.Unlock()
}

// run signals progress until stop is closed.
func (p *progressAcks) run(stop <-chan struct{}) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.signal()
		}
	}
}

// signal sends one progress signal to each event running for at least a
// whole interval (it started before the last tick).
func (p *progressAcks) signal() {
	p.mu.Lock()
	p.tick++
	due := p.due[:0]
	for m, started := range p.running {
		if started+1 < p.tick {
			due = append(due, m)
		}
	}
	p.mu.Unlock()
	for i, m := range due {
		_ = m.InProgress() // an event acked since is refused; nothing to do
		due[i] = nil
	}
	p.due = due[:0]
}
