package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/storage"
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

// startValidation moves the challenge to processing and queues its
// validation. The queue slot is taken first, so a full queue changes
// nothing and the client may simply retry.
func (s *Server) startValidation(ctx context.Context, ch *storage.Challenge, a *storage.Authorization, acct *storage.Account, acctURL, clientIP string) error {
	started := make(chan bool, 1)
	job := func() {
		if !<-started {
			return
		}
		s.runValidation(ch, a, acct, acctURL, clientIP)
	}
	if !s.pool.trySubmit(job) {
		return RateLimited(5*time.Second, "too many validations are under way; retry shortly")
	}
	if err := s.store.StartChallenge(ctx, ch.ID); err != nil {
		started <- false
		if errors.Is(err, storage.ErrConflict) {
			return Malformed("the challenge or its authorization is no longer pending")
		}
		return storeError("challenge", err)
	}
	started <- true
	return nil
}

// runValidation performs the check and records the result (RFC 8555 §7.5.1).
// The record is one transaction: challenge, authorization and the orders
// that become ready (or invalid) change together.
func (s *Server) runValidation(ch *storage.Challenge, a *storage.Authorization, acct *storage.Account, acctURL, clientIP string) {
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
	err := s.validator.Validate(ctx, req)
	valid, problemJSON := err == nil, ""
	if err != nil {
		p := validationFailure(err)
		p.Identifier = &storage.Identifier{Type: a.Type, Value: a.Value}
		b, _ := json.Marshal(p)
		problemJSON = string(b)
		s.log.Info("validation failed", "challenge", ch.ID, "type", ch.Type, "identifier", a.Value, "problem", p.Type, "detail", p.Detail)
		s.recordFailure(ctx, acct.ID, clientIP)
	}
	for attempt := 0; ; attempt++ {
		err := s.store.CompleteChallenge(ctx, ch.ID, valid, problemJSON, s.now().UTC())
		if err == nil || errors.Is(err, storage.ErrConflict) || attempt >= 5 || ctx.Err() != nil {
			if err != nil {
				s.log.Error("record validation result", "challenge", ch.ID, "err", err)
			}
			return
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
