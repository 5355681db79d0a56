package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"time"
)

// Store keeps fixed-window event counters, in the database so that a
// limit holds across every replica. A window is named by its bucket (rule
// and key, e.g. "newOrder/acct:ID") and its start. storage implements it.
type Store interface {
	// AddRateLimitHits adds n to the counter of bucket's window starting at
	// start, creating it (to be swept after end), and returns the count
	// afterwards. It is one atomic statement.
	AddRateLimitHits(ctx context.Context, bucket string, start, end time.Time, n int64) (int64, error)
	// RateLimitHits returns the count of bucket's window starting at start,
	// 0 when there is none.
	RateLimitHits(ctx context.Context, bucket string, start time.Time) (int64, error)
	// SweepRateLimits deletes windows that ended by before and returns
	// how many.
	SweepRateLimits(ctx context.Context, before time.Time) (int64, error)
}

// Limiter counts events in fixed windows kept in the database. Windows
// are offset per key by a hash of the key, so that keys limited at the same
// moment do not all come back at the same instant. A fixed window lets a
// key make up to twice Limit events around a window boundary, which is
// fine for limits meant to stop runaways, and keeps the hot path to one
// statement. Limiter is safe for concurrent use, and several Limiters on
// one database (replicas) share their counts.
type Limiter struct {
	store Store
	now   func() time.Time
}

// New returns a Limiter on store; now is the clock (nil: time.Now).
func New(store Store, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: store, now: now}
}

// Allow counts one event of rule for key and reports whether it is within
// the limit. When it is not, retryAfter says when the key's window ends.
// Refused attempts count too; with fixed windows that only delays nothing.
// A disabled rule allows everything without touching the database.
func (l *Limiter) Allow(ctx context.Context, rule Rule, key string) (ok bool, retryAfter time.Duration, err error) {
	if !rule.Enabled() {
		return true, 0, nil
	}
	now := l.now()
	b, start, end := window(rule, key, now)
	n, err := l.store.AddRateLimitHits(ctx, b, start, end, 1)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", rule.Name, err)
	}
	if n > int64(rule.Limit) {
		return false, until(now, end), nil
	}
	return true, 0, nil
}

// Record counts one event of rule for key without deciding anything, for
// events that have already happened, such as a failed validation.
func (l *Limiter) Record(ctx context.Context, rule Rule, key string) error {
	if !rule.Enabled() {
		return nil
	}
	b, start, end := window(rule, key, l.now())
	if _, err := l.store.AddRateLimitHits(ctx, b, start, end, 1); err != nil {
		return fmt.Errorf("rate limit %s: %w", rule.Name, err)
	}
	return nil
}

// Check reports whether key may cause another event of rule, without
// counting one: false once Record was called Limit times in the window.
// Use it before work whose failure is recorded, e.g. before starting a
// validation when failed validations are limited.
func (l *Limiter) Check(ctx context.Context, rule Rule, key string) (ok bool, retryAfter time.Duration, err error) {
	if !rule.Enabled() {
		return true, 0, nil
	}
	now := l.now()
	b, start, end := window(rule, key, now)
	n, err := l.store.RateLimitHits(ctx, b, start)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", rule.Name, err)
	}
	if n >= int64(rule.Limit) {
		return false, until(now, end), nil
	}
	return true, 0, nil
}

// Sweep deletes the counters of windows that have ended; run it from the
// cluster-wide background job. It returns how many it deleted.
func (l *Limiter) Sweep(ctx context.Context) (int64, error) {
	return l.store.SweepRateLimits(ctx, l.now())
}

// window returns the database bucket for rule and key, and the bounds of
// the window holding now.
func window(rule Rule, key string, now time.Time) (bucket string, start, end time.Time) {
	bucket = rule.Name + "|" + key
	if len(bucket) > 200 { // the column holds 255; keys are normally short
		sum := sha256.Sum256([]byte(key))
		bucket = rule.Name + "|sha256:" + hex.EncodeToString(sum[:])
	}
	w := int64(rule.Window / time.Second)
	h := fnv.New64a()
	h.Write([]byte(bucket))
	offset := int64(h.Sum64() % uint64(w))
	s := now.Unix() - offset
	s = s - ((s%w)+w)%w + offset
	start = time.Unix(s, 0)
	return bucket, start, start.Add(rule.Window)
}

// until is the Retry-After for a window ending at end, at least a second.
func until(now, end time.Time) time.Duration {
	d := (end.Sub(now) + time.Second - 1).Truncate(time.Second)
	return max(d, time.Second)
}

// IPKey returns the key under which per-IP rules count a client address
// (an IP, or host:port as in http.Request.RemoteAddr). IPv6 clients are
// counted per /64, the block one host usually owns, so that cycling
// through addresses does not escape a limit.
func IPKey(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
