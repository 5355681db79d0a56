package health

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDB fails while down is set and counts its pings.
type fakeDB struct {
	down  atomic.Bool
	slow  time.Duration
	pings atomic.Int32
}

func (f *fakeDB) Ping(ctx context.Context) error {
	f.pings.Add(1)
	if f.slow > 0 {
		select {
		case <-time.After(f.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.down.Load() {
		return errors.New("dial tcp 10.0.0.5:5432: connection refused (user=secretuser)")
	}
	return nil
}

func selfSigned(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func get(t *testing.T, h http.Handler, path string) (int, status) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var st status
	if rec.Code != http.StatusTeapot {
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", path, rec.Body, err)
		}
	}
	return rec.Code, st
}

func TestSignatureCheck(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tc := range map[string]struct {
		key  crypto.Signer
		cert *x509.Certificate
		ok   bool
	}{
		"ok/ecdsa":         {ec, selfSigned(t, ec), true},
		"ok/rsa":           {rk, selfSigned(t, rk), true},
		"ok/ed25519":       {ed, selfSigned(t, ed), true},
		"fail/other-key":   {other, selfSigned(t, ec), false},
		"fail/no-key":      {nil, selfSigned(t, ec), false},
		"fail/broken-sign": {brokenSigner{ec}, selfSigned(t, ec), false},
	} {
		t.Run(name, func(t *testing.T) {
			err := testSignature(tc.key, tc.cert)
			if (err == nil) != tc.ok {
				t.Fatalf("testSignature: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// brokenSigner is a key store that lost its session.
type brokenSigner struct{ crypto.Signer }

func (brokenSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("CKR_SESSION_HANDLE_INVALID")
}

func TestReadiness(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(t, key)
	db := &fakeDB{}
	c := &Checker{DB: db, Issuer: func() (crypto.Signer, *x509.Certificate) { return key, cert },
		CacheFor: 50 * time.Millisecond, Logger: quiet()}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := c.Handler(next)

	if code, st := get(t, h, "/readyz"); code != 200 || st.Status != "ready" {
		t.Fatalf("up: /readyz %d %+v", code, st)
	}
	if code, _ := get(t, h, "/acme/directory"); code != http.StatusTeapot {
		t.Fatalf("other paths must reach the next handler, got %d", code)
	}
	// Within CacheFor the verdict is reused: no second ping.
	before := db.pings.Load()
	get(t, h, "/readyz")
	if db.pings.Load() != before {
		t.Fatalf("a second /readyz within CacheFor pinged the database again")
	}

	db.down.Store(true)
	time.Sleep(60 * time.Millisecond)
	code, st := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || st.Status != "unavailable" || !strings.Contains(st.Reason, "database") {
		t.Fatalf("down: /readyz %d %+v, want 503 naming the database", code, st)
	}
	if strings.Contains(st.Reason, "secretuser") || strings.Contains(st.Reason, "10.0.0.5") {
		t.Fatalf("the reason leaks the cause: %q", st.Reason)
	}
	if code, st := get(t, h, "/healthz"); code != 200 || st.Status != "ok" {
		t.Fatalf("/healthz must stay 200 while the database is down: %d %+v", code, st)
	}

	db.down.Store(false)
	time.Sleep(60 * time.Millisecond)
	if code, st := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("back up: /readyz %d %+v", code, st)
	}
}

func TestReadinessTimeout(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(t, key)
	c := &Checker{DB: &fakeDB{slow: 5 * time.Second}, Issuer: func() (crypto.Signer, *x509.Certificate) { return key, cert },
		DBTimeout: 100 * time.Millisecond, Logger: quiet()}
	start := time.Now()
	err := c.Ready(context.Background())
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("a database slower than DBTimeout: err %v after %s, want an error within the timeout", err, time.Since(start))
	}
}

func TestReadinessSigner(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(t, key)
	c := &Checker{DB: &fakeDB{}, Issuer: func() (crypto.Signer, *x509.Certificate) { return brokenSigner{key}, cert }, Logger: quiet()}
	err := c.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), "key") || strings.Contains(err.Error(), "CKR_") {
		t.Fatalf("broken signer: %v, want a reason naming the key without the cause", err)
	}
}
