package web

import (
	"context"
	"sync"
	"time"

	"github.com/certmint/certmint/internal/auditchain"
)

// The Audit page shows the newest seal of the audit log and whether the
// chain verifies (docs/audit.md). The newest seal is one cheap read per
// view. Verification reads the whole log, so it runs in the background,
// once per chainCheckEvery at most and one at a time on each replica,
// and only when someone looks; the page shows the newest finished result
// and waits a moment for a first one. `certmint audit verify` is the
// authoritative check: this one reads through the same database that an
// attacker would edit.
const (
	chainCheckEvery = time.Minute
	chainCheckWait  = 2 * time.Second
	chainCheckLimit = 5 * time.Minute
)

// chainCheck is the newest verification's outcome.
type chainCheck struct {
	mu      sync.Mutex
	running bool
	done    chan struct{} // closed when the running check finishes
	at      time.Time     // when the newest check finished, failed or not
	report  *auditchain.Report
	err     error
}

// chainStatus is what the template shows.
type chainStatus struct {
	Last     *auditchain.Seal
	Report   *auditchain.Report
	Err      error
	At       time.Time // when the newest check finished; zero before the first
	Checking bool
}

// auditChain returns the last seal and the newest verification,
// starting one when the newest is stale.
func (s *server) auditChain(ctx context.Context) (chainStatus, error) {
	last, err := s.store.LastAuditSeal(ctx)
	if err != nil {
		return chainStatus{}, err
	}
	c := &s.chain
	c.mu.Lock()
	if !c.running && (c.at.IsZero() || s.now().Sub(c.at) >= chainCheckEvery) {
		c.running, c.done = true, make(chan struct{})
		go s.verifyChain()
	}
	done := c.done
	first := c.report == nil && c.err == nil
	c.mu.Unlock()
	if first {
		select {
		case <-done:
		case <-time.After(chainCheckWait):
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return chainStatus{Last: last, Report: c.report, Err: c.err, At: c.at, Checking: c.running}, nil
}

func (s *server) verifyChain() {
	ctx, cancel := context.WithTimeout(context.Background(), chainCheckLimit)
	defer cancel()
	var key []byte
	if s.cfg.AuditKey != nil {
		key = s.cfg.AuditKey()
	}
	rep, err := auditchain.Verify(ctx, s.store, auditchain.Options{Key: key})
	if err != nil {
		s.log.Warn("audit page: verify the audit chain", "err", err)
	} else if !rep.OK() {
		s.log.Error("the audit chain does not verify", "first", rep.First.String(), "problems", rep.Problems)
	}
	c := &s.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.at = false, s.now()
	if err != nil {
		// Not the previous verdict: the page would show it as checked now.
		c.report, c.err = nil, err
	} else {
		c.report, c.err = &rep, nil
	}
	close(c.done)
}
