package bench

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Histogram records durations in fixed memory: log-linear buckets of
// microseconds with 64 sub-buckets per power of two, so a percentile is
// exact below 128µs and within 1/64 (1.6%) above. A run of an hour at
// thousands of flows a second would otherwise keep millions of samples.
// Record is safe for concurrent use and does not allocate.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // microseconds
	max    atomic.Uint64 // microseconds
}

const (
	subBits     = 6
	subBuckets  = 1 << subBits // 64
	maxShift    = 36           // values up to 2^43µs, about 100 days
	histBuckets = (maxShift + 2) * subBuckets
)

// bucketOf maps a value in microseconds to its bucket: values below 128
// have their own bucket; above, the top 7 bits select it.
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	if shift > maxShift {
		return histBuckets - 1
	}
	return shift*subBuckets + int(v>>uint(shift))
}

// bucketRange is the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*subBuckets {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subBuckets - 1)
	m := uint64(i - int(shift)*subBuckets)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// middle of the bucket holding it, never above the largest value seen.
func (h *Histogram) Percentile(p float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

// Max is the largest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Mean is the average duration recorded.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// Steps of one flow, in order. Each is recorded once per flow: "authz" and
// "challenge" are the total over the flow's K names.
const (
	StepNewOrder = iota
	StepAuthz
	StepChallenge
	StepValidation
	StepFinalize
	StepDownload
	numSteps
)

// StepNames are the names of the steps in reports.
var StepNames = [numSteps]string{"newOrder", "authz", "challenge", "validation", "finalize", "download"}

// Stats is what a run collects; safe for concurrent use.
type Stats struct {
	Flow      Histogram
	Steps     [numSteps]Histogram
	OK        atomic.Int64
	Failed    atomic.Int64
	Abandoned atomic.Int64
	Retries   atomic.Int64 // badNonce retries that were absorbed
	Requests  atomic.Int64 // ACME requests sent, newNonce included

	mu     sync.Mutex
	errors map[string]*ErrorCount
}

// AddError counts one failed flow under kind (a problem type URN or a
// class such as "connection error"), keeping the first example.
func (s *Stats) AddError(kind, example string) {
	s.Failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errors == nil {
		s.errors = map[string]*ErrorCount{}
	}
	e := s.errors[kind]
	if e == nil {
		e = &ErrorCount{Type: kind, Example: example}
		s.errors[kind] = e
	}
	e.Count++
}

// ErrorCounts returns the error groups, most frequent first.
func (s *Stats) ErrorCounts() []ErrorCount {
	s.mu.Lock()
	out := make([]ErrorCount, 0, len(s.errors))
	for _, e := range s.errors {
		out = append(out, *e)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Type < out[j].Type
	})
	return out
}
