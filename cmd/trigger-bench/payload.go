package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// The event every scenario sends: a PRE_CREATE or POST_CREATE of a SERVER,
// shaped like the contract's example, about 300 bytes in all. The input
// carries the send time (sentNs, Unix nanoseconds) for end-to-end latency,
// and pad makes the whole event --payload-size bytes.
const (
	benchOption   = "SERVER"
	benchBEUUID   = "b1c6e2d4"
	benchCustomer = `{"resourceUUID":"c2d3e4f5","resourceName":"Acme"}`
	benchUser     = `{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"}`
	stampKey      = `"sentNs":`
)

// payload builds the event of a scenario, for the raw side (the whole JSON
// document, as pkg/client would encode it) and for our side (the event that
// pkg/client encodes).
type payload struct {
	pad string
	seq atomic.Uint64
}

// newPayload returns a payload whose events are size bytes, or the unpadded
// size (about 330 bytes) when that is more.
func newPayload(size int) *payload {
	p := &payload{}
	base := len(p.raw("POST_CREATE", time.Now().UnixNano()))
	const padField = len(`,"pad":""`)
	if size >= base+padField {
		p.pad = strings.Repeat("x", size-base-padField)
	}
	return p
}

// input returns the event's input with the send time sentNs.
func (p *payload) input(sentNs int64) []byte {
	b := make([]byte, 0, 96+len(p.pad))
	b = append(b, `{"resourceName":"web-1","cpu":4,"ram":8192,`...)
	b = append(b, stampKey...)
	b = strconv.AppendInt(b, sentNs, 10)
	if p.pad != "" {
		b = append(b, `,"pad":"`...)
		b = append(b, p.pad...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// event returns the event our side publishes; pkg/client fills in the id,
// type, option and time stamp.
func (p *payload) event(sentNs int64) *event.Event {
	return &event.Event{
		BEUUID:   benchBEUUID,
		Customer: json.RawMessage(benchCustomer),
		User:     json.RawMessage(benchUser),
		Input:    p.input(sentNs),
	}
}

// id returns a new event id for the raw side: 26 characters like
// event.NewID's, from a counter.
func (p *payload) id() string {
	var b [26]byte
	s := strconv.AppendUint(b[:0], p.seq.Add(1), 10)
	out := make([]byte, 26)
	for i := range out {
		out[i] = '0'
	}
	copy(out[26-len(s):], s)
	return string(out)
}

// raw returns the whole event document of the raw side with a new id: the
// same fields, order and size as the one pkg/client publishes.
func (p *payload) raw(typ string, sentNs int64) []byte {
	return p.rawWithID(p.id(), typ, sentNs, 0)
}

// rawPre returns the raw side's PRE request, the event as client.Decide
// sends it: with its deadline, client.DefaultDecideTimeout after the send
// time (Decide's own, for a context without a deadline).
func (p *payload) rawPre(sentNs int64) []byte {
	return p.rawWithID(p.id(), "PRE_CREATE", sentNs, preDeadlineOf(sentNs))
}

// preDeadlineOf is the deadline, in Unix milliseconds, of a PRE request
// sent at sentNs.
func preDeadlineOf(sentNs int64) int64 {
	return sentNs/int64(time.Millisecond) + client.DefaultDecideTimeout.Milliseconds()
}

// rawWithID is the event document with the id and, when deadlineMs is not
// 0, a deadline.
func (p *payload) rawWithID(id, typ string, sentNs, deadlineMs int64) []byte {
	b := make([]byte, 0, 512+len(p.pad))
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","triggerType":"`...)
	b = append(b, typ...)
	b = append(b, `","triggerOption":"`+benchOption+`","timeStamp":`...)
	b = strconv.AppendInt(b, sentNs/int64(time.Millisecond), 10)
	if deadlineMs != 0 {
		b = append(b, `,"deadline":`...)
		b = strconv.AppendInt(b, deadlineMs, 10)
	}
	b = append(b, `,"beUUID":"`+benchBEUUID+`","customer":`+benchCustomer+`,"user":`+benchUser+`,"input":`...)
	b = append(b, p.input(sentNs)...)
	b = append(b, '}')
	return b
}

// stampOf finds the send time in an event or its input.
func stampOf(data []byte) (int64, bool) {
	i := bytes.Index(data, []byte(stampKey))
	if i < 0 {
		return 0, false
	}
	var v int64
	n := 0
	for _, c := range data[i+len(stampKey):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		n++
	}
	return v, n > 0
}
