package auditchain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

// Reader is what Verify reads.
type Reader interface {
	// AuditSeals returns up to limit seals with Seq > after, by Seq.
	AuditSeals(ctx context.Context, after int64, limit int) ([]Seal, error)
	// AuditEntries returns up to limit entries with after < ID <= upto,
	// by ID; upto "" leaves the range open.
	AuditEntries(ctx context.Context, after, upto string, limit int) ([]audit.Event, error)
	// CountAuditEntries counts the entries with ID > after.
	CountAuditEntries(ctx context.Context, after string) (int64, error)
}

// Store is what the sealer reads and writes.
type Store interface {
	Reader
	// LastAuditSeal returns the seal with the highest Seq, without its
	// Digests, or nil when there is none.
	LastAuditSeal(ctx context.Context) (*Seal, error)
	// AddAuditSeal stores s; it fails with an error wrapping
	// acme.ErrConflict when a seal with its Seq exists.
	AddAuditSeal(ctx context.Context, s Seal) error
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}

// Defaults of the sealer's timing.
const (
	DefaultEvery  = 5 * time.Second
	DefaultSettle = 2 * time.Minute
	// batch bounds one seal: catching up a long unsealed log (the first
	// run after an upgrade) writes many seals of this size.
	batch     = 2000
	leaseName = "audit-sealer"
)

// Sealer seals the audit log every Every, on one replica at a time (the
// one holding the "audit-sealer" lease), off the issuance path: the
// request that writes an entry never waits for it.
//
// Which entries a run may seal (the trap of replicas): entry IDs are made
// before their transaction commits, by the replica's clock, so with
// several writers an entry whose ID sorts below the newest sealed ID can
// still commit after that seal was taken. Sealing "everything above the
// last sealed ID" would then make that late commit look inserted. The
// sealer therefore seals only entries whose ID was made more than Settle
// ago (acme.LastIDBefore), a window well above the longest transaction
// (--db-statement-timeout bounds each statement; serve requires Settle to
// be at least three of them) plus the clock difference between replicas.
// A commit-ordered sequence was the alternative; in SQL it needs one row
// that every audit-writing transaction updates, which serializes issuance
// across replicas, the opposite of what sealing may cost.
type Sealer struct {
	Store  Store
	Holder string // this replica's name in the lease
	Every  time.Duration
	Settle time.Duration
	// Key keys each seal's MAC; nil seals unkeyed (see KeyFromPassphrase).
	Key    []byte
	Logger *slog.Logger
	Now    func() time.Time

	// seen is the newest seal this sealer knew of: if a later run finds
	// the chain shorter, or that seal changed, seals were deleted or
	// rewritten, and sealing again would bless what was done to the
	// entries they covered.
	seen *Seal
	// broken stops sealing for good: the chain was tampered with, or it
	// is keyed and this replica has no key. Either way Once returns
	// before taking the lease, so it lapses to a replica that can seal.
	broken error
}

// Run seals until ctx ends.
func (s *Sealer) Run(ctx context.Context) {
	if s.Every <= 0 {
		s.Every = DefaultEvery
	}
	t := time.NewTicker(s.Every)
	defer t.Stop()
	var last string
	for {
		_, err := s.Once(ctx)
		// Once logged ErrTampered itself, as an error.
		if msg := fmt.Sprint(err); err != nil && msg != last && ctx.Err() == nil && !errors.Is(err, ErrTampered) {
			s.Logger.Warn("audit sealing", "err", err)
		}
		last = fmt.Sprint(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrTampered says the sealer found the chain shortened or rewritten
// behind its back and stopped sealing.
var ErrTampered = errors.New("the audit chain was tampered with")

// Once seals the entries that have settled, if this replica holds the
// lease, and returns how many seals it wrote.
func (s *Sealer) Once(ctx context.Context) (int, error) {
	if s.broken != nil {
		return 0, s.broken
	}
	now := s.now()
	settle := s.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	cut := acme.LastIDBefore(now.Add(-settle))
	written := 0
	for ctx.Err() == nil {
		ok, err := s.Store.AcquireLease(ctx, leaseName, s.Holder, s.now(), 2*s.Every+30*time.Second)
		if err != nil || !ok {
			return written, err
		}
		last, err := s.Store.LastAuditSeal(ctx)
		if err != nil {
			return written, err
		}
		if err := s.checkSeen(ctx, last); err != nil {
			s.broken = err
			s.Logger.Error("audit sealing stopped: run `certmint audit verify`", "err", err)
			return written, err
		}
		if s.Key == nil && last != nil && last.MAC != "" {
			s.broken = errors.New("the audit chain is keyed and this replica has no CERTMINT_CA_PASSPHRASE; it leaves sealing to one that has")
			return written, s.broken
		}
		seal, full, err := s.next(ctx, last, cut)
		if err != nil || seal == nil {
			return written, err
		}
		if err := s.Store.AddAuditSeal(ctx, *seal); err != nil {
			if errors.Is(err, acme.ErrConflict) {
				return written, nil // another replica sealed first; the next run goes on from its seal
			}
			return written, err
		}
		s.seen = &Seal{Seq: seal.Seq, Hash: seal.Hash}
		written++
		s.Logger.Info("audit sealed", "seal", seal.Seq, "entries", seal.Count, "upto", seal.Upto, "hash", seal.Hash)
		if !full {
			return written, nil
		}
	}
	return written, ctx.Err()
}

// next builds the seal after last covering the entries up to cut, at
// most batch of them; full reports that more may be waiting. No entries:
// no seal, except the first keyed one after unkeyed seals, so that a
// quiet log becomes keyed at once (Verify with the passphrase wants the
// newest seal to carry a MAC).
func (s *Sealer) next(ctx context.Context, last *Seal, cut string) (seal *Seal, full bool, err error) {
	var after, prev string
	var seq int64 = 1
	if last != nil {
		after, prev, seq = last.Upto, last.Hash, last.Seq+1
	}
	if cut <= after {
		return nil, false, nil
	}
	entries, err := s.Store.AuditEntries(ctx, after, cut, batch)
	if err != nil {
		return nil, false, err
	}
	if len(entries) == 0 && (s.Key == nil || last == nil || last.MAC != "") {
		return nil, false, nil
	}
	upto := cut
	if full = len(entries) == batch; full {
		upto = entries[len(entries)-1].ID
	}
	seal = &Seal{Seq: seq, SealedAt: s.now().UTC().Truncate(time.Microsecond), After: after, Upto: upto,
		Count: len(entries), Digests: FormatDigests(entries)}
	seal.Hash = SealHash(*seal, prev)
	if s.Key != nil {
		seal.MAC = SealMAC(s.Key, seal.Hash)
	}
	return seal, full, nil
}

// checkSeen compares the chain with the newest seal this sealer knew,
// then remembers last as that.
func (s *Sealer) checkSeen(ctx context.Context, last *Seal) error {
	if seen := s.seen; seen != nil {
		if last == nil || last.Seq < seen.Seq {
			return fmt.Errorf("%w: seal %d was there and is gone (seals deleted)", ErrTampered, seen.Seq)
		}
		same := last.Seq == seen.Seq && last.Hash == seen.Hash
		if last.Seq > seen.Seq { // another replica sealed since: is ours still there?
			got, err := s.Store.AuditSeals(ctx, seen.Seq-1, 1)
			if err != nil {
				return err
			}
			same = len(got) == 1 && got[0].Seq == seen.Seq && got[0].Hash == seen.Hash
		}
		if !same {
			return fmt.Errorf("%w: seal %d is not the seal written or read before", ErrTampered, seen.Seq)
		}
	}
	if last != nil {
		s.seen = &Seal{Seq: last.Seq, Hash: last.Hash}
	}
	return nil
}

func (s *Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
