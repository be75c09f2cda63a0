package worker

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// metadataOf is what nats.go's Metadata reads from reply (the jetstream
// package's message and the nats.Msg use the same parser).
func metadataOf(reply string) (delivered, streamSeq uint64, ok bool) {
	m := &nats.Msg{Reply: reply, Sub: &nats.Subscription{}}
	meta, err := m.Metadata()
	if err != nil {
		return 0, 0, false
	}
	return meta.NumDelivered, meta.Sequence.Stream, true
}

var ackReplies = []string{
	"$JS.ACK.TRIGGER_EVENTS.trigger-workers.1.42.40.1733400000000000000.7",
	"$JS.ACK.TRIGGER_EVENTS.trigger-workers.3.18446744073709551615.1.1.0",
	"$JS.ACK._.ACCHASH.TRIGGER_EVENTS.trigger-workers.2.1001.999.1733400000000000000.0.TOKEN",
	"$JS.ACK.hub.ACCHASH.S.C.5.6.7.8.9",
	"$JS.ACK.hub.ACCHASH.S.C.5.6.7.8.9.TOKEN.MORE",
	"$JS.ACK.S.C.x1.2.3.4.5",
	"$JS.ACK.S.C..2.3.4.5",
	"$JS.ACK.S.C.1.2.3.4",
	"$JS.ACK.S.C.1.2.3.4.5.6",
	"$JS.NAK.S.C.1.2.3.4.5",
	"_INBOX.abc",
	"",
}

func TestAckInfo(t *testing.T) {
	for _, r := range ackReplies {
		d, seq, ok := ackInfo(r)
		wd, wseq, wok := metadataOf(r)
		if d != wd || seq != wseq || ok != wok {
			t.Errorf("ackInfo(%q) = %d, %d, %v; Metadata reads %d, %d, %v", r, d, seq, ok, wd, wseq, wok)
		}
	}
	if d, seq, ok := ackInfo(ackReplies[2]); !ok || d != 2 || seq != 1001 {
		t.Errorf("ackInfo(%q) = %d, %d, %v; want 2, 1001, true", ackReplies[2], d, seq, ok)
	}
}

func FuzzAckInfo(f *testing.F) {
	for _, r := range ackReplies {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r string) {
		d, seq, ok := ackInfo(r)
		wd, wseq, wok := metadataOf(r)
		if d != wd || seq != wseq || ok != wok {
			t.Errorf("ackInfo(%q) = %d, %d, %v; Metadata reads %d, %d, %v", r, d, seq, ok, wd, wseq, wok)
		}
	})
}
