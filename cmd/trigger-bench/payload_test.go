package main

import (
	"testing"
	"time"
)

// TestPayloadLikeForLike checks that the raw side sends the very bytes
// pkg/client encodes for our side, at every size.
func TestPayloadLikeForLike(t *testing.T) {
	for _, size := range []int{0, 300, 400, 1000, 4096} {
		p := newPayload(size)
		sent := time.Now().UnixNano()
		raw := p.rawWithID("01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "POST_CREATE", sent)
		if size > 400 && len(raw) != size {
			t.Errorf("newPayload(%d): raw event is %d bytes", size, len(raw))
		}
		ev := p.event(sent)
		ev.ID, ev.TriggerType, ev.TriggerOption, ev.TimeStamp = "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "POST_CREATE", benchOption, sent/int64(time.Millisecond)
		ours, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(ours) {
			t.Errorf("newPayload(%d):\nraw  %s\nours %s", size, raw, ours)
		}
		if ts, ok := stampOf(raw); !ok || ts != sent {
			t.Errorf("newPayload(%d): stampOf = %d, %v, want %d", size, ts, ok, sent)
		}
	}
}
