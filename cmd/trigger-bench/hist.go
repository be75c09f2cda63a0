package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram: log buckets with subBuckets linear sub-buckets per
// power of two (HDR-like), over nanoseconds. A bucket is at most 1/128 (0.8%)
// of its value wide, so that a ratio of two quantiles is good to about 1%
// (targets such as PRE sequential's p50 <= 1.2x are that close); values up
// to 2^63 ns fit.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	numBuckets = (64 - subBits) * subBuckets
)

// bucketOf returns the bucket of v nanoseconds.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1
	return e*subBuckets + int(v>>e)
}

// bucketLow returns the smallest value of bucket i, and its width.
func bucketLow(i int) (low, width uint64) {
	if i < 2*subBuckets {
		return uint64(i), 1
	}
	e := i/subBuckets - 1
	return uint64(i-e*subBuckets) << e, 1 << e
}

// hist is a latency histogram for one goroutine. The zero value is empty.
type hist struct {
	counts [numBuckets]uint64
	n      uint64
	max    uint64
}

func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1), the midpoint of its bucket;
// 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketLow(i)
			return time.Duration(min(low+width/2, h.max))
		}
	}
	return time.Duration(h.max)
}

// sparse is a histogram on the wire (child to parent): [bucket, count] pairs.
type sparse struct {
	Buckets [][2]uint64 `json:"buckets"`
	Max     uint64      `json:"max"`
}

func (h *hist) sparse() sparse {
	s := sparse{Max: h.max}
	for i, c := range h.counts {
		if c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

func (s sparse) hist() *hist {
	h := &hist{max: s.Max}
	for _, b := range s.Buckets {
		if b[0] < numBuckets {
			h.counts[b[0]] += b[1]
			h.n += b[1]
		}
	}
	return h
}

// atomicHist is a histogram many goroutines record into.
type atomicHist struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Uint64
}

func (h *atomicHist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

func (h *atomicHist) snapshot() *hist {
	out := &hist{max: h.max.Load()}
	for i := range h.counts {
		c := h.counts[i].Load()
		out.counts[i] = c
		out.n += c
	}
	return out
}
