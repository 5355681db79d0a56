package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
)

// The handler tests drive Server.Handler() in process: real JWS requests
// signed with real keys, a real CA in a temp dir, the in-memory fakeStore,
// a fake validator and a settable clock. No socket, no database, no DNS.

// testHost is the Host of every test request; URLs in JWS headers and in
// answers are built from it (RFC 8555 §6.4).
const (
	testHost = "acme.test"
	testBase = "https://" + testHost
)

// testClock is the injected clock (Config.Now and the CA's): tests move
// it forward instead of sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeValidator stands in for *validate.Validator: it answers with err
// (nil: the challenge is satisfied) and records what it was asked.
type fakeValidator struct {
	mu    sync.Mutex
	err   error
	calls []validate.Request
	// hold, when set, makes Validate wait until it is closed: a slow
	// validation.
	hold chan struct{}
}

func (v *fakeValidator) Validate(ctx context.Context, r validate.Request) error {
	v.mu.Lock()
	v.calls = append(v.calls, r)
	hold, err := v.hold, v.err
	v.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// ValidatePersist answers as Validate does, with a record named after the
// identifier on success.
func (v *fakeValidator) ValidatePersist(ctx context.Context, r validate.Request) (*validate.PersistMatch, error) {
	if err := v.Validate(ctx, r); err != nil {
		return nil, err
	}
	name := "_validation-persist." + r.Value
	return &validate.PersistMatch{Name: name, Record: name + ` IN TXT "ca.test; accounturi=` + r.AccountURL + `"`}, nil
}

func (v *fakeValidator) set(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
}

func (v *fakeValidator) failWith(kind validate.Kind, detail string) {
	v.set(&validate.Error{Kind: kind, Detail: detail})
}

func (v *fakeValidator) requests() []validate.Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]validate.Request(nil), v.calls...)
}

// env is one server under test with everything it talks to.
type env struct {
	store *fakeStore
	clock *testClock
	val   *fakeValidator
	ca    *ca.CA
	srv   *Server
	// revokes counts OnRevoke calls (the CRL republication notice).
	revokes atomic.Int32
}

// newEnv builds a server with a CA of its own; opts adjust its Config
// before New.
func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, newFakeStore(), openCA(t), opts...)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// openCA creates a real CA in a temp dir of t. Its own clock is the real
// one: the servers' clocks start at the real time and only move forward.
func openCA(t *testing.T) *ca.CA {
	t.Helper()
	authority, err := ca.Open(ca.Options{Dir: t.TempDir() + "/ca", Logger: quietLog})
	if err != nil {
		t.Fatalf("open CA: %v", err)
	}
	return authority
}

// newEnvOn builds a server on st and authority.
func newEnvOn(t *testing.T, st *fakeStore, authority *ca.CA, opts ...func(*Config)) *env {
	t.Helper()
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	e := &env{store: st, clock: clock, val: &fakeValidator{}, ca: authority}
	cfg := Config{Logger: quietLog, Now: clock.Now, ValidationWorkers: 2, ValidationQueue: 8,
		OnRevoke: func() { e.revokes.Add(1) }}
	for _, o := range opts {
		o(&cfg)
	}
	var err error
	e.srv, err = New(context.Background(), cfg, e.store, authority, e.val)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(e.srv.Close)
	return e
}

// resp is one recorded answer.
type resp struct {
	code int
	h    http.Header
	body []byte
	// method and path of the request, for where a nonce belongs.
	method, path string
}

// do sends a raw request through the handler.
func (e *env) do(t *testing.T, method, path, contentType string, body []byte) *resp {
	t.Helper()
	req := httptest.NewRequest(method, testBase+path, bytes.NewReader(body))
	req.Host = testHost
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return &resp{code: rec.Code, h: rec.Header(), body: rec.Body.Bytes(), method: method, path: path}
}

// payloadBytes encodes a request payload: nil is POST-as-GET (RFC 8555
// §6.3), []byte and string are sent as they are, anything else as JSON.
func payloadBytes(t *testing.T, payload any) []byte {
	t.Helper()
	switch p := payload.(type) {
	case nil:
		return nil
	case []byte:
		return p
	case string:
		return []byte(p)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign builds a JWS for path with a fresh nonce: kid when set, else the jwk
// of key.
func (e *env) sign(t *testing.T, key crypto.Signer, kid, path string, payload any) []byte {
	t.Helper()
	body, err := jws.Sign(key, "", jws.Header{KID: kid, Nonce: e.srv.nonces.New(), URL: testBase + path}, payloadBytes(t, payload))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (e *env) postBody(t *testing.T, path string, body []byte) *resp {
	t.Helper()
	return e.do(t, http.MethodPost, path, "application/jose+json", body)
}

// post sends a kid-signed request of account a.
func (e *env) post(t *testing.T, a *account, path string, payload any) *resp {
	t.Helper()
	return e.postBody(t, path, e.sign(t, a.key, a.kid, path, payload))
}

// postJWK sends a request signed with key and carrying its jwk.
func (e *env) postJWK(t *testing.T, key crypto.Signer, path string, payload any) *resp {
	t.Helper()
	return e.postBody(t, path, e.sign(t, key, "", path, payload))
}

// account is a registered test client.
type account struct {
	key crypto.Signer
	kid string // the account URL
	id  string
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register creates an account with a new P-256 key.
func (e *env) register(t *testing.T) *account {
	t.Helper()
	key := newKey(t)
	r := e.postJWK(t, key, "/acme/new-account", map[string]any{"termsOfServiceAgreed": true})
	e.wantStatus(t, r, http.StatusCreated)
	loc := r.h.Get("Location")
	return &account{key: key, kid: loc, id: lastSegment(loc)}
}

func lastSegment(url string) string { return url[strings.LastIndex(url, "/")+1:] }

// pathOf strips testBase from a URL the server sent.
func pathOf(t *testing.T, url string) string {
	t.Helper()
	p, ok := strings.CutPrefix(url, testBase)
	if !ok {
		t.Fatalf("URL %q is not on %s", url, testBase)
	}
	return p
}

// wantNonce checks that the answer carries a fresh nonce (RFC 8555 §6.5)
// by redeeming it: a missing, forged or used nonce fails.
// wantNonce checks the nonce where RFC 8555 puts one (§6.5, §7.2): a fresh
// Replay-Nonce on every answer to a POST, errors included, and on
// newNonce; none elsewhere (Ruby's acme-client breaks on one on the
// directory).
func (e *env) wantNonce(t *testing.T, r *resp) {
	t.Helper()
	n := r.h.Get("Replay-Nonce")
	if r.method != http.MethodPost && r.path != "/acme/new-nonce" {
		if n != "" {
			t.Fatalf("%s %s answered with a Replay-Nonce", r.method, r.path)
		}
		return
	}
	if n == "" {
		t.Fatalf("answer %d has no Replay-Nonce", r.code)
	}
	if err := e.srv.nonces.Redeem(context.Background(), n); err != nil {
		t.Fatalf("Replay-Nonce %q of answer %d is not fresh: %v", n, r.code, err)
	}
}

// wantStatus checks a success answer's status and nonce.
func (e *env) wantStatus(t *testing.T, r *resp, status int) {
	t.Helper()
	if r.code != status {
		t.Fatalf("status %d, want %d; body %s", r.code, status, r.body)
	}
	e.wantNonce(t, r)
}

// wantProblem checks an error answer: status, problem+json, the RFC 8555
// §6.7 type (short form, e.g. "malformed") and the nonce.
func (e *env) wantProblem(t *testing.T, r *resp, status int, typ string) *Problem {
	t.Helper()
	if r.code != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.code, status, typ, r.body)
	}
	if ct := r.h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	p := &Problem{}
	if r.code == 0 || len(r.body) == 0 {
		t.Fatalf("problem answer has no body")
	}
	if err := json.Unmarshal(r.body, p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Type != ProblemNS+typ {
		t.Fatalf("problem type %q, want %q; detail %q", p.Type, ProblemNS+typ, p.Detail)
	}
	if p.Status != status {
		t.Fatalf("problem document status %d, want %d", p.Status, status)
	}
	e.wantNonce(t, r)
	return p
}

// decode unmarshals an answer's JSON body into v.
func decode[T any](t *testing.T, r *resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

// hcase is one named handler test case: run makes the request (after any
// setup of its own); an empty problem means success with status.
type hcase struct {
	name    string
	opts    []func(*Config)
	run     func(t *testing.T, e *env) *resp
	status  int
	problem string
	check   func(t *testing.T, e *env, r *resp)
	// shared runs the server on a store shared by replicas (Postgres):
	// nonces are redeemed in the store, not in memory.
	shared bool
}

// runCases runs every case on a fresh server, in parallel, and the table
// in parallel with the other tables.
// The cases of one table share one CA (creating one costs two key
// generations); each has its own store, clock, validator and server.
func runCases(t *testing.T, cases []hcase) {
	t.Helper()
	t.Parallel()
	authority := openCA(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := newFakeStore()
			st.shared = c.shared
			e := newEnvOn(t, st, authority, c.opts...)
			r := c.run(t, e)
			if c.problem != "" {
				e.wantProblem(t, r, c.status, c.problem)
			} else {
				e.wantStatus(t, r, c.status)
			}
			if c.check != nil {
				c.check(t, e, r)
			}
		})
	}
}

// newOrder orders names (DNS, or IP when they parse as one) and returns
// the order's path and body.
func (e *env) newOrder(t *testing.T, a *account, names ...string) (string, orderJSON) {
	t.Helper()
	r := e.post(t, a, "/acme/new-order", map[string]any{"identifiers": idents(names...)})
	e.wantStatus(t, r, http.StatusCreated)
	return pathOf(t, r.h.Get("Location")), decode[orderJSON](t, r)
}

func idents(names ...string) []Identifier {
	out := make([]Identifier, len(names))
	for i, n := range names {
		out[i] = Identifier{Type: "dns", Value: n}
		if net.ParseIP(n) != nil {
			out[i].Type = "ip"
		}
	}
	return out
}

// challengeOf returns the path of the authorization's challenge of type typ.
func (e *env) challengeOf(t *testing.T, a *account, authzPath, typ string) string {
	t.Helper()
	r := e.post(t, a, authzPath, nil)
	e.wantStatus(t, r, http.StatusOK)
	for _, ch := range decode[authzJSON](t, r).Challenges {
		if ch.Type == typ {
			return pathOf(t, ch.URL)
		}
	}
	t.Fatalf("authorization %s has no %s challenge: %s", authzPath, typ, r.body)
	return ""
}

// readyOrder orders names and answers every authorization's challenge
// (http-01, dns-01 for wildcards) through the fake validator, which must
// succeed; it returns the order's path once ready.
func (e *env) readyOrder(t *testing.T, a *account, names ...string) string {
	t.Helper()
	orderPath, o := e.newOrder(t, a, names...)
	for _, az := range o.Authorizations {
		r := e.post(t, a, pathOf(t, az), nil)
		e.wantStatus(t, r, http.StatusOK)
		typ := "http-01"
		if decode[authzJSON](t, r).Wildcard {
			typ = "dns-01"
		}
		r = e.post(t, a, e.challengeOf(t, a, pathOf(t, az), typ), map[string]any{})
		e.wantStatus(t, r, http.StatusOK)
	}
	// The challenge answers wait for the validations (validationWait), so
	// the order is ready now; the bound only spares a starved machine.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r := e.post(t, a, orderPath, nil)
		e.wantStatus(t, r, http.StatusOK)
		st := decode[orderJSON](t, r).Status
		if st == StatusReady {
			return orderPath
		}
		if st != StatusPending || time.Now().After(deadline) {
			t.Fatalf("order is %s after validating every challenge, want ready", st)
		}
	}
}

// csr returns a base64url CSR for names, signed by key, with cn as common
// name when set.
func csr(t *testing.T, key crypto.Signer, cn string, names ...string) string {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

// issued is a certificate obtained through the handlers.
type issued struct {
	orderPath string
	certPath  string
	key       *ecdsa.PrivateKey // the certificate's key
	leaf      *x509.Certificate
}

// issue runs an order for names to a certificate and downloads it.
func (e *env) issue(t *testing.T, a *account, names ...string) *issued {
	t.Helper()
	orderPath := e.readyOrder(t, a, names...)
	key := newKey(t)
	r := e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, key, "", names...)})
	e.wantStatus(t, r, http.StatusOK)
	o := decode[orderJSON](t, r)
	if o.Status != StatusValid || o.Certificate == "" {
		t.Fatalf("finalized order: %s", r.body)
	}
	certPath := pathOf(t, o.Certificate)
	r = e.post(t, a, certPath, nil)
	e.wantStatus(t, r, http.StatusOK)
	leaf := firstCert(t, r.body)
	return &issued{orderPath: orderPath, certPath: certPath, key: key, leaf: leaf}
}
