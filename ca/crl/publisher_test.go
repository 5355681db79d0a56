package crl

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/ca"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// memStore is an in-memory Store with the contract's semantics (storage
// implements the real one and tests it against the same contract): CRL
// numbers per issuer, a conditional save of the newest CRL, DER only for a
// newer list, a revocation state that changes with every revocation.
// Several publishers sharing one memStore are replicas on one database.
type memStore struct {
	mu       sync.Mutex
	numbers  map[string]int64
	crls     map[string]CRL
	certs    map[string]*memCert // by ID
	revokeNo int                 // revocations so far
}

type memCert struct {
	serial   string
	notAfter time.Time
	revoked  *Revoked
}

func newMemStore() *memStore {
	return &memStore{numbers: map[string]int64{}, crls: map[string]CRL{}, certs: map[string]*memCert{}}
}

var _ Store = (*memStore)(nil)

func (m *memStore) NextCRLNumber(_ context.Context, issuer string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.numbers[issuer]++
	return m.numbers[issuer], nil
}

func (m *memStore) SaveCRL(_ context.Context, c *CRL) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.crls[c.Issuer]; ok && old.Number >= c.Number {
		return false, nil
	}
	cp := *c
	cp.DER = bytes.Clone(c.DER)
	m.crls[c.Issuer] = cp
	return true, nil
}

func (m *memStore) GetCRL(_ context.Context, issuer string, newerThan int64) (*CRL, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.crls[issuer]
	if !ok {
		return nil, nil
	}
	c.DER = nil
	if c.Number > newerThan {
		c.DER = bytes.Clone(m.crls[issuer].DER)
	}
	return &c, nil
}

func (m *memStore) RevocationState(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%d", m.revokeNo), nil
}

func (m *memStore) ListRevoked(_ context.Context, notAfterSince time.Time) ([]Revoked, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Revoked
	for _, c := range m.certs {
		if c.revoked != nil && !c.notAfter.Before(notAfterSince) {
			out = append(out, *c.revoked)
		}
	}
	slices.SortFunc(out, func(a, b Revoked) int { return strings.Compare(a.Serial, b.Serial) })
	return out, nil
}

// addCert records an issued certificate.
func (m *memStore) addCert(id, serial string, notAfter time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.certs[id] = &memCert{serial: serial, notAfter: notAfter}
}

// revoke revokes certificate id once, as storage's RevokeCertificate does.
func (m *memStore) revoke(id string, reason int, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[id]
	switch {
	case !ok:
		return fmt.Errorf("certificate %s: not found", id)
	case c.revoked != nil:
		return fmt.Errorf("certificate %s: already revoked", id)
	}
	c.revoked = &Revoked{CertificateID: id, Serial: c.serial, RevokedAt: &at, Reason: reason}
	m.revokeNo++
	return nil
}

// issued is a certificate the test revokes.
type issued struct {
	ID     string
	Serial string
}

type env struct {
	store *memStore
	ca    *ca.CA
	clock *fakeClock
	next  int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	authority, err := ca.Open(ca.Options{Dir: filepath.Join(dir, "ca"), Now: clock.Now, Logger: quiet()})
	if err != nil {
		t.Fatalf("open CA: %v", err)
	}
	return &env{store: newMemStore(), ca: authority, clock: clock}
}

// open returns another handle on the same database, as another replica
// would have: with the in-memory store, the store itself.
func (e *env) open(*testing.T) Store { return e.store }

func (e *env) publisher(t *testing.T, st Store) *Publisher {
	t.Helper()
	p, err := newPublisher(st, e.ca.Active(), st.ListRevoked, Options{Now: e.clock.Now, Logger: quiet(), Poll: 50 * time.Millisecond, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// issue records a certificate with a fresh serial, valid for 90 days.
func (e *env) issue(t *testing.T) *issued {
	t.Helper()
	serial, err := ca.NewSerial()
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	e.next++
	c := &issued{ID: fmt.Sprintf("cert-%d", e.next), Serial: hex.EncodeToString(serial.Bytes())}
	e.store.addCert(c.ID, c.Serial, e.clock.Now().Add(90*24*time.Hour))
	return c
}

func (e *env) revoke(t *testing.T, c *issued, reason int) {
	t.Helper()
	if err := e.store.revoke(c.ID, reason, e.clock.Now()); err != nil {
		t.Fatalf("revoke: %v", err)
	}
}

// fetch GETs the DER CRL from srv and checks what any client relies on:
// the content type, a valid signature by the intermediate.
func fetch(t *testing.T, srv *httptest.Server, authority *ca.CA) ([]byte, *x509.RevocationList) {
	t.Helper()
	resp, err := http.Get(srv.URL + DERPath)
	if err != nil {
		t.Fatalf("GET CRL: %v", err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET CRL: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	if err := list.CheckSignatureFrom(authority.Intermediate()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return der, list
}

func findEntry(list *x509.RevocationList, serialHex string) *x509.RevocationListEntry {
	for i, e := range list.RevokedCertificateEntries {
		if hex.EncodeToString(e.SerialNumber.Bytes()) == serialHex {
			return &list.RevokedCertificateEntries[i]
		}
	}
	return nil
}

// TestRevocationReachesCRL runs the publisher as serve does: a revocation
// followed by Notify shows up in the served CRL, with its reason, signed
// by the intermediate, under a higher CRL number, and openssl reads it.
func TestRevocationReachesCRL(t *testing.T) {
	e := newEnv(t)
	p := e.publisher(t, e.store)
	compromised, superseded, unspecified := e.issue(t), e.issue(t), e.issue(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)

	waitNumber(t, p, 1)
	_, first := fetch(t, srv, e.ca)
	if len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("first CRL lists %d certificates, want none", len(first.RevokedCertificateEntries))
	}
	if !first.ThisUpdate.Equal(e.clock.Now()) || first.NextUpdate.Sub(first.ThisUpdate) != 24*time.Hour {
		t.Fatalf("thisUpdate %v nextUpdate %v, want now and now+24h", first.ThisUpdate, first.NextUpdate)
	}

	e.revoke(t, compromised, 1)
	e.revoke(t, superseded, 4)
	e.revoke(t, unspecified, 0)
	p.Notify()
	waitNumber(t, p, first.Number.Int64()+1)
	der, list := fetch(t, srv, e.ca)
	if list.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("CRL number %v not above %v", list.Number, first.Number)
	}
	for _, tc := range []struct {
		cert   *issued
		reason int
	}{{compromised, 1}, {superseded, 4}, {unspecified, 0}} {
		got := findEntry(list, tc.cert.Serial)
		if got == nil {
			t.Fatalf("serial %s missing from CRL", tc.cert.Serial)
		}
		if got.ReasonCode != tc.reason {
			t.Errorf("serial %s: reason %d, want %d", tc.cert.Serial, got.ReasonCode, tc.reason)
		}
		if tc.reason == 0 && len(got.Extensions) != 0 {
			t.Errorf("unspecified reason carries extensions %v; RFC 5280 §5.3.1 says omit", got.Extensions)
		}
	}
	opensslReads(t, e, der, compromised.Serial)
}

// opensslReads checks the CRL with the real openssl binary: it lists the
// serial with the reason text and verifies against the CA chain.
func opensslReads(t *testing.T, e *env, der []byte, serialHex string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not installed")
		}
		t.Skip("openssl not installed; apt-get install openssl")
	}
	dir := t.TempDir()
	crlPath, caPath := filepath.Join(dir, "crl.der"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(crlPath, der, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caPath, append(e.ca.RootPEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.ca.Intermediate().Raw})...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "crl", "-inform", "DER", "-in", crlPath, "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl -text: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "Serial Number: "+strings.ToUpper(serialHex)) || !strings.Contains(text, "Key Compromise") {
		t.Fatalf("openssl does not list serial %s with Key Compromise:\n%s", serialHex, text)
	}
	out, err = exec.Command(bin, "crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -CAfile: %v\n%s", err, out)
	}
}

// waitNumber waits for Run to serve a CRL numbered at least n.
func waitNumber(t *testing.T, p *Publisher, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, got := p.served(); got >= n {
			return
		}
		if time.Now().After(deadline) {
			_, got := p.served()
			t.Fatalf("CRL number still %d after 10s, want >= %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicasAndRestart: replicas on one database serve the same CRL,
// pick up revocations made elsewhere without Notify, keep numbers growing
// across a restart, and re-sign before nextUpdate with no revocation.
func TestReplicasAndRestart(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	a, b := e.publisher(t, e.store), e.publisher(t, e.open(t))
	if err := a.Refresh(ctx); err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatalf("b: %v", err)
	}
	derA, nA := a.served()
	derB, nB := b.served()
	if nA != 1 || nB != 1 || !bytes.Equal(derA, derB) {
		t.Fatalf("replicas serve CRL %d and %d (same bytes %v), want both the one CRL 1", nA, nB, bytes.Equal(derA, derB))
	}

	// A revocation by some other process, with no Notify anywhere.
	c := e.issue(t)
	e.revoke(t, c, 1)
	if err := b.Refresh(ctx); err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatalf("a: %v", err)
	}
	derA, nA = a.served()
	derB, nB = b.served()
	if nB != 2 || nA != 2 || !bytes.Equal(derA, derB) {
		t.Fatalf("after revocation: a serves %d, b serves %d, want both 2", nA, nB)
	}
	list, _ := x509.ParseRevocationList(derA)
	if findEntry(list, c.Serial) == nil {
		t.Fatalf("revoked serial missing")
	}
	// Nothing changed: polling signs nothing new.
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := a.served(); n != 2 {
		t.Fatalf("idle refresh signed CRL %d", n)
	}

	// Restart: a new publisher serves the stored list at once and
	// numbers continue.
	restarted := e.publisher(t, e.open(t))
	if err := restarted.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if der, n := restarted.served(); n != 2 || !bytes.Equal(der, derA) {
		t.Fatalf("after restart serving %d, want stored CRL 2", n)
	}
	// Eight hours on (Validity/3), the list is re-signed though nothing
	// was revoked, so nextUpdate stays 16h+ ahead.
	e.clock.Add(8 * time.Hour)
	if err := restarted.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	der, n := restarted.served()
	list, err := x509.ParseRevocationList(der)
	if err != nil || n != 3 || list.Number.Int64() != 3 || !list.NextUpdate.Equal(e.clock.Now().Add(24*time.Hour)) ||
		findEntry(list, c.Serial) == nil {
		t.Fatalf("periodic re-sign: number %d, nextUpdate %v, err %v", n, list.NextUpdate, err)
	}
}

func TestHandler(t *testing.T) {
	e := newEnv(t)
	p := e.publisher(t, e.store)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + DERPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the first CRL: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if err := p.Refresh(tctx(t)); err != nil {
		t.Fatal(err)
	}
	der, _ := fetch(t, srv, e.ca)

	resp, err = http.Get(srv.URL + PEMPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, der) {
		t.Fatalf("PEM CRL does not hold the DER CRL: %q", body)
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+DERPath, nil)
	req.Header.Set("If-None-Match", `"1"`)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation of an unchanged CRL: %s, want 304", resp.Status)
	}
	resp, err = http.Post(srv.URL+DERPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s, want 405", resp.Status)
	}
}

// served is the DER and number of the CRL p serves, or nil and 0 before
// its first publication.
func (p *Publisher) served() ([]byte, int64) {
	if cur := p.current(); cur != nil {
		return cur.der, cur.number
	}
	return nil, 0
}
