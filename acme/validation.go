package acme

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/certmint/certmint/acme/validate"
)

// validationPool runs validations on a fixed number of workers with a
// bounded queue, so a burst of challenges cannot exhaust the server.
type validationPool struct {
	jobs chan func()
	wg   sync.WaitGroup
	once sync.Once
}

func newValidationPool(workers, queue int) *validationPool {
	p := &validationPool{jobs: make(chan func(), queue)}
	p.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go func() {
			defer p.wg.Done()
			for job := range p.jobs {
				job()
			}
		}()
	}
	return p
}

// trySubmit queues job, or reports false when the queue is full.
func (p *validationPool) trySubmit(job func()) bool {
	select {
	case p.jobs <- job:
		return true
	default:
		return false
	}
}

func (p *validationPool) close() {
	p.once.Do(func() { close(p.jobs) })
	p.wg.Wait()
}

// validationTimeout bounds one validation, including the database write.
const validationTimeout = 30 * time.Second

// validationWait is how long the challenge POST waits for its validation
// before answering "processing". Validations of services on the same
// network usually finish in a few milliseconds; answering with the final
// state then spares the client its polls and their Retry-After sleeps
// (lego, for one, sleeps the Retry-After when its first poll finds the
// challenge still processing). A
// slower validation just goes on in the background. RFC 8555 §7.5.1 lets
// the response carry any state.
const validationWait = 2 * time.Second

// startValidation queues the challenge's validation and returns a channel
// that yields the challenge as recorded once the result is stored (nil if
// storing failed); it is buffered, so nobody has to read it. A full queue
// changes nothing and the client may simply retry.
//
// The challenge is not marked processing first: a quick validation is
// stored in one transaction straight from pending (one commit per
// validation instead of two), and only a validation that outlasts
// validationWait is marked processing, by awaitValidation, before the
// client hears of it. A crash in between leaves the challenge pending,
// which is right: the client's request was never answered.
func (s *Server) startValidation(ch *Challenge, a *Authorization, acct *Account, acctURL, clientIP string) (<-chan *Challenge, error) {
	done := make(chan *Challenge, 1)
	if !s.pool.trySubmit(func() { done <- s.runValidation(ch, a, acct, acctURL, clientIP) }) {
		return nil, RateLimited(5*time.Second, "too many validations are under way; retry shortly")
	}
	return done, nil
}

// awaitValidation waits up to validationWait for the stored result and
// returns the challenge as it then is. When the validation takes longer,
// the challenge is marked processing (RFC 8555 §7.1.6) and returned so,
// and the validation goes on in the background. If the result was stored
// meanwhile, or another request validated the challenge at the same time,
// the stored state is read back instead.
func (s *Server) awaitValidation(ctx context.Context, ch *Challenge, done <-chan *Challenge) (*Challenge, error) {
	t := time.NewTimer(validationWait)
	defer t.Stop()
	select {
	case fin := <-done:
		if fin != nil {
			return fin, nil
		}
	case <-t.C:
	case <-ctx.Done():
	}
	err := s.store.StartChallenge(ctx, ch.ID)
	if errors.Is(err, ErrConflict) {
		cur, _, gerr := s.store.GetChallenge(ctx, ch.ID)
		if gerr != nil {
			return nil, storeError("challenge", gerr)
		}
		return cur, nil
	}
	if err != nil {
		return nil, storeError("challenge", err)
	}
	out := *ch
	out.Status = StatusProcessing
	return &out, nil
}

// runValidation performs the check and records the result (RFC 8555 §7.5.1).
// The record is one transaction: challenge, authorization and the orders
// that become ready (or invalid) change together. It returns the challenge
// as recorded, or nil when the result could not be stored; the challenge
// is then marked processing by awaitValidation, and ResumeValidations
// validates it again at the next start.
func (s *Server) runValidation(ch *Challenge, a *Authorization, acct *Account, acctURL, clientIP string) *Challenge {
	ctx, cancel := context.WithTimeout(context.Background(), validationTimeout)
	defer cancel()
	req := validate.Request{
		Type:       ch.Type,
		IdentType:  a.Type,
		Value:      a.Value,
		Token:      ch.Token,
		KeyAuth:    ch.Token + "." + acct.KeyThumbprint,
		AccountURL: acctURL,
	}
	var failure *Problem
	started := time.Now()
	err := s.validateChallenge(ctx, ch, a, req)
	result := "valid"
	if err != nil {
		result = "invalid"
	}
	s.observer.ObserveValidation(ch.Type, result, time.Since(started))
	if err != nil {
		p := validationFailure(err)
		p.Identifier = &Identifier{Type: a.Type, Value: a.Value}
		failure = p
		s.log.Info("validation failed", "challenge", ch.ID, "type", ch.Type, "identifier", a.Value, "problem", p.Type, "detail", p.Detail)
		s.recordFailure(ctx, acct.ID, clientIP)
	}
	at := s.now().UTC()
	for attempt := 0; ; attempt++ {
		err := s.store.CompleteChallenge(ctx, ch.ID, failure, at)
		if err == nil {
			out := *ch
			out.Status, out.Error = StatusInvalid, failure
			if failure == nil {
				v := at.Truncate(time.Microsecond)
				out.Status, out.Validated = StatusValid, &v
			}
			return &out
		}
		if errors.Is(err, ErrConflict) || attempt >= 5 || ctx.Err() != nil {
			s.log.Error("record validation result", "challenge", ch.ID, "err", err)
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// validationFailure maps a validate error to its RFC 8555 problem type.
func validationFailure(err error) *Problem {
	var ve *validate.Error
	if errors.As(err, &ve) {
		return ValidationProblem(string(ve.Kind), ve.Detail)
	}
	return ValidationProblem("serverInternal", fmt.Sprintf("validation could not run: %v", err))
}

// ResumeValidations restarts the validations that a crash or restart cut
// short: their challenges are still processing in the database, but no
// process is working on them. Running one twice is harmless, since
// recording the result is a compare-and-set.
func (s *Server) ResumeValidations(ctx context.Context) (int, error) {
	chs, err := s.store.ListProcessingChallenges(ctx, 10000)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range chs {
		ch, a, err := s.store.GetChallenge(ctx, chs[i].ID)
		if err != nil {
			continue
		}
		acct, err := s.store.GetAccount(ctx, a.AccountID)
		if err != nil {
			continue
		}
		url := s.cfg.BaseURL + "/acme/account/" + acct.ID
		if s.pool.trySubmit(func() { s.runValidation(ch, a, acct, url, "") }) {
			n++
		}
	}
	return n, nil
}
