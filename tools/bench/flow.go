package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// maxPollSleep caps every sleep between polls, whatever Retry-After says:
// the bench measures the server, not its own sleeps.
const maxPollSleep = 50 * time.Millisecond

type order struct {
	Status         string   `json:"status"`
	Authorizations []string `json:"authorizations"`
	Finalize       string   `json:"finalize"`
	Certificate    string   `json:"certificate"`
}

type challenge struct {
	Type   string   `json:"type"`
	URL    string   `json:"url"`
	Token  string   `json:"token"`
	Status string   `json:"status"`
	Error  *problem `json:"error"`
}

type authorization struct {
	Status     string      `json:"status"`
	Challenges []challenge `json:"challenges"`
}

// flowError is why a flow failed: the step, and the kind it is grouped
// under in the report.
type flowError struct {
	step string
	kind string
	err  error
}

func (e *flowError) Error() string { return e.step + ": " + e.err.Error() }
func (e *flowError) Unwrap() error { return e.err }

// fail classifies err: a problem document by its type, anything else by
// what went wrong on the wire.
func fail(step string, err error) *flowError {
	var p *problem
	kind := "client error"
	switch {
	case errors.As(err, &p):
		kind = p.Type
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		kind = "timeout"
	default:
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) {
			kind = "connection error"
		}
	}
	return &flowError{step: step, kind: kind, err: err}
}

// worker runs flows one after the other on its own account.
type worker struct {
	c     *client
	stats *Stats
	resp  *responder
	keys  []crypto.Signer // shared pool of certificate keys
	names int
	dom   string
	rnd   *mrand.ChaCha8
	n     int // flows started, to rotate through keys

	// scratch reused across flows
	ids   []string
	chals []*pending
	toks  []string
}

// label returns a random DNS label of 16 hex digits.
func (w *worker) label() string {
	var b [8]byte
	w.rnd.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}

// flow runs one complete issuance (RFC 8555 §7.4): new order, authz,
// http-01, wait for ready, finalize, download. It records each step's
// latency into w.stats only when the whole flow succeeds.
func (w *worker) flow(ctx context.Context) error {
	c := w.c
	var steps [numSteps]time.Duration
	start := time.Now()
	mark := start
	lap := func(step int) {
		now := time.Now()
		steps[step] = now.Sub(mark)
		mark = now
	}

	w.ids = w.ids[:0]
	payload := append(make([]byte, 0, 64+48*w.names), `{"identifiers":[`...)
	for i := 0; i < w.names; i++ {
		name := w.label() + "." + w.dom
		w.ids = append(w.ids, name)
		if i > 0 {
			payload = append(payload, ',')
		}
		payload = append(payload, `{"type":"dns","value":`...)
		payload = strconv.AppendQuote(payload, name)
		payload = append(payload, '}')
	}
	payload = append(payload, "]}"...)

	// newOrder, §7.4.
	r, err := c.post(ctx, c.dir.NewOrder, payload)
	if err != nil {
		return fail("newOrder", err)
	}
	var o order
	if err := json.Unmarshal(r.body, &o); err != nil || r.location == "" || r.status != http.StatusCreated {
		return fail("newOrder", fmt.Errorf("HTTP %d, order unreadable or without Location", r.status))
	}
	orderURL := r.location
	lap(StepNewOrder)

	// Authorizations, §7.5.
	w.chals, w.toks = w.chals[:0], w.toks[:0]
	defer func() {
		for _, t := range w.toks {
			w.resp.remove(t)
		}
	}()
	var chalURLs []string
	for _, u := range o.Authorizations {
		r, err := c.post(ctx, u, nil)
		if err != nil {
			return fail("authz", err)
		}
		var a authorization
		if err := json.Unmarshal(r.body, &a); err != nil {
			return fail("authz", fmt.Errorf("authorization unreadable: %w", err))
		}
		if a.Status == "valid" {
			continue // reused authorization: nothing to prove
		}
		i := slices.IndexFunc(a.Challenges, func(ch challenge) bool { return ch.Type == "http-01" })
		if i < 0 {
			return fail("authz", errors.New("no http-01 challenge offered"))
		}
		ch := a.Challenges[i]
		w.chals = append(w.chals, w.resp.add(ch.Token, ch.Token+"."+c.thumb))
		w.toks = append(w.toks, ch.Token)
		chalURLs = append(chalURLs, ch.URL)
	}
	lap(StepAuthz)

	// Respond to the challenges, §7.5.1.
	// A server may validate before it answers (certmint does, for quick
	// validations): when every challenge came back valid the order is
	// ready, and the wait and polls below are skipped.
	allValid := true
	for _, u := range chalURLs {
		r, err := c.post(ctx, u, []byte("{}"))
		if err != nil {
			return fail("challenge", err)
		}
		var ch challenge
		if err := json.Unmarshal(r.body, &ch); err != nil {
			return fail("challenge", fmt.Errorf("challenge unreadable: %w", err))
		}
		if ch.Status == "invalid" {
			if ch.Error != nil {
				return fail("validation", ch.Error)
			}
			return fail("validation", errors.New("challenge is invalid"))
		}
		allValid = allValid && ch.Status == "valid"
	}
	lap(StepChallenge)

	// Build the CSR while the server validates: it overlaps server work.
	key := w.keys[w.n%len(w.keys)]
	w.n++
	csr, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: w.ids[0]}, DNSNames: w.ids}, key)
	if err != nil {
		return fail("finalize", fmt.Errorf("create CSR: %w", err))
	}

	// Validation: wait until the server fetched every token, then poll
	// the order until it is ready (§7.1.6).
	if !allValid {
		timer := time.NewTimer(maxPollSleep)
		for _, p := range w.chals {
			select {
			case <-p.fetched:
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return fail("validation", ctx.Err())
			}
		}
		timer.Stop()
		o, err = w.poll(ctx, orderURL, "ready")
		if err != nil {
			return w.validationError(ctx, o, err)
		}
	}
	lap(StepValidation)

	// Finalize, §7.4.
	fin := append(make([]byte, 0, 16+base64.RawURLEncoding.EncodedLen(len(csr))), `{"csr":"`...)
	fin = base64.RawURLEncoding.AppendEncode(fin, csr)
	fin = append(fin, `"}`...)
	r, err = c.post(ctx, o.Finalize, fin)
	if err != nil {
		return fail("finalize", err)
	}
	o = order{}
	if err := json.Unmarshal(r.body, &o); err != nil {
		return fail("finalize", fmt.Errorf("order unreadable: %w", err))
	}
	if o.Status != "valid" || o.Certificate == "" {
		if o.Status == "invalid" {
			return fail("finalize", errors.New("order became invalid"))
		}
		if o, err = w.poll(ctx, orderURL, "valid"); err != nil {
			return fail("finalize", err)
		}
	}
	lap(StepFinalize)

	// Download, §7.4.2: POST-as-GET, PEM chain, leaf first.
	r, err = c.post(ctx, o.Certificate, nil)
	if err != nil {
		return fail("download", err)
	}
	block, _ := pem.Decode(r.body)
	if block == nil || block.Type != "CERTIFICATE" {
		return fail("download", errors.New("response is not a PEM certificate chain"))
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fail("download", fmt.Errorf("parse certificate: %w", err))
	}
	if !slices.Contains(leaf.DNSNames, w.ids[0]) {
		return fail("download", fmt.Errorf("certificate does not name %s", w.ids[0]))
	}
	lap(StepDownload)

	w.stats.Flow.Record(time.Since(start))
	for i, d := range steps {
		w.stats.Steps[i].Record(d)
	}
	return nil
}

// poll fetches the order until it reaches want, sleeping 1, 2, 4 ... ms
// in between, never longer than Retry-After or maxPollSleep.
func (w *worker) poll(ctx context.Context, url, want string) (order, error) {
	delay := time.Millisecond
	for {
		var o order
		r, err := w.c.post(ctx, url, nil)
		if err != nil {
			return o, err
		}
		if err := json.Unmarshal(r.body, &o); err != nil {
			return o, fmt.Errorf("order unreadable: %w", err)
		}
		switch o.Status {
		case want:
			return o, nil
		case "invalid":
			return o, fmt.Errorf("order is invalid, waiting for %q", want)
		}
		sleep := min(delay, maxPollSleep)
		if r.retryAfter > 0 {
			sleep = min(sleep, r.retryAfter)
		}
		delay *= 2
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return o, ctx.Err()
		}
	}
}

// validationError explains an order that did not become ready: the
// challenge's own error (§8, "error" field) when the order went invalid.
func (w *worker) validationError(ctx context.Context, o order, err error) error {
	if o.Status != "invalid" {
		return fail("validation", err)
	}
	for _, u := range o.Authorizations {
		r, err := w.c.post(ctx, u, nil)
		if err != nil {
			continue
		}
		var a authorization
		if json.Unmarshal(r.body, &a) != nil {
			continue
		}
		for _, ch := range a.Challenges {
			if ch.Error != nil && ch.Error.Type != "" {
				return fail("validation", ch.Error)
			}
		}
	}
	return fail("validation", err)
}
