package event

import (
	"math/rand/v2"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new event id: 26 characters of Crockford base32, a 48-bit
// millisecond timestamp followed by 80 random bits, so that ids sort by time.
//
// The random bits come from math/rand/v2's global generator (ChaCha8,
// seeded by the operating system): an id must be unique, not secret (a
// publisher may choose its own), and crypto/rand's read was most of the
// cost of an id, which the SDK makes for every event.
func NewID() string { return NewIDAt(time.Now()) }

// NewIDAt returns a new event id made at t, for a caller that has read the
// clock already (the SDK stamps the event's timeStamp with the same time).
func NewIDAt(t time.Time) string {
	hi := uint64(t.UnixMilli())<<16 | rand.Uint64()&0xffff
	lo := rand.Uint64()
	var out [26]byte
	// 128 bits as 26 five-bit groups: the first group holds the top 3 bits.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
