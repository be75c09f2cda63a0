package main

import (
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	values := []uint64{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 257, 1000, 123456789, 1 << 40, 1<<63 - 1}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		low, width := bucketLow(i)
		if v < low || v-low >= width {
			t.Errorf("bucketOf(%d) = %d = [%d, %d+%d), does not hold it", v, i, low, low, width)
		}
		if v >= 2*subBuckets && float64(width)/float64(v) > 1.0/subBuckets {
			t.Errorf("bucket of %d is %d wide, more than 1/%d", v, width, subBuckets)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if diff := float64(got-tt.want) / float64(tt.want); diff > 0.01 || diff < -0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", tt.q, got, tt.want)
		}
	}
	back := h.sparse().hist()
	if back.n != h.n || back.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("sparse round trip: n %d p50 %v, want %d %v", back.n, back.quantile(0.5), h.n, h.quantile(0.5))
	}
}
