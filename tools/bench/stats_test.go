package bench

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1 << 20, 1<<40 + 12345} {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= 128 && float64(hi-lo) > float64(lo)/64 {
			t.Errorf("bucket %d = [%d, %d] is wider than 1/64", i, lo, hi)
		}
	}
	// Buckets are contiguous and increasing.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("gap between bucket %d (hi %d) and %d (lo %d)", i-1, prevHi, i, lo)
		}
	}
}

func TestPercentileExactForSmallValues(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := h.Percentile(tc.p); got != tc.want*time.Microsecond {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want*time.Microsecond)
		}
	}
	if h.Max() != 100*time.Microsecond || h.Count() != 100 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	if h.Mean() != 50*time.Microsecond { // 5050/100 rounded down
		t.Errorf("mean %v", h.Mean())
	}
}

// TestPercentileMatchesSorted compares with exact nearest-rank
// percentiles over a sorted sample of realistic latencies.
func TestPercentileMatchesSorted(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 20000 {
		d := time.Duration(r.ExpFloat64()*float64(8*time.Millisecond)) + time.Millisecond
		d = d.Truncate(time.Microsecond)
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, p := range []float64{50, 90, 99, 99.9} {
		want := all[int(p/100*float64(len(all)))-1]
		got := h.Percentile(p)
		if diff := float64(got-want) / float64(want); diff > 0.02 || diff < -0.02 {
			t.Errorf("p%v = %v, exact %v (%.2f%% off)", p, got, want, 100*diff)
		}
	}
	if h.Max() != all[len(all)-1] {
		t.Errorf("max %v, want %v", h.Max(), all[len(all)-1])
	}
}

func TestHistogramEmptyAndExtremes(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Error("empty histogram should report zeros")
	}
	h.Record(-time.Second)     // clock oddity: counted as zero
	h.Record(2400 * time.Hour) // beyond the last bucket: clamped, max exact
	if h.Count() != 2 || h.Max() != 2400*time.Hour {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	if h.Percentile(100) > h.Max() {
		t.Errorf("p100 %v above max", h.Percentile(100))
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(w*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999*time.Microsecond {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
}

func TestErrorCounts(t *testing.T) {
	var s Stats
	s.AddError("connection error", "authz: EOF")
	s.AddError(badNonce, "newOrder: first")
	s.AddError(badNonce, "newOrder: second")
	s.AddError("urn:ietf:params:acme:error:unauthorized", "validation: x")
	got := s.ErrorCounts()
	want := []ErrorCount{
		{Type: badNonce, Count: 2, Example: "newOrder: first"},
		{Type: "connection error", Count: 1, Example: "authz: EOF"},
		{Type: "urn:ietf:params:acme:error:unauthorized", Count: 1, Example: "validation: x"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if s.Failed.Load() != 4 {
		t.Errorf("failed = %d", s.Failed.Load())
	}
}
