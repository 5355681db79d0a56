package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/storage"
)

const testPassword = "correct horse battery"

var (
	testCAOnce sync.Once
	testCA     *ca.CA
	testCAErr  error
	caDir      string
)

// sharedCA creates one CA for the package's tests; key generation is the
// slow part and the console only reads the CA.
func sharedCA(t testing.TB) *ca.CA {
	testCAOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			testCAErr = err
			return
		}
		caDir = filepath.Join(dir, "ca")
		testCA, testCAErr = ca.Open(ca.Options{Dir: caDir})
	})
	if testCAErr != nil {
		t.Fatalf("open CA: %v", testCAErr)
	}
	return testCA
}

type fixture struct {
	t       testing.TB
	srv     *server
	ts      *httptest.Server
	store   storage.Store
	sleeps  []time.Duration
	revoked int
	mu      sync.Mutex
}

// newFixture runs the console over TLS on loopback with a fresh SQLite
// store and a user "admin" with testPassword.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: st}
	srv, err := newServer(Config{Store: st, CA: sharedCA(t), ACMEDirectoryURL: "https://acme.test:8443/acme/directory",
		Settings: []Setting{{Name: "db", Value: "postgres://certmint:xxxxx@db/certmint", Source: "flag"}}, Version: "test",
		OnRevoke: func() { f.mu.Lock(); f.revoked++; f.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	srv.sleep = func(_ *http.Request, d time.Duration) { f.mu.Lock(); f.sleeps = append(f.sleeps, d); f.mu.Unlock() }
	f.srv = srv
	f.ts = httptest.NewTLSServer(srv.routes())
	t.Cleanup(f.ts.Close)
	hash, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAdminUser(context.Background(), &storage.AdminUser{Username: "admin", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	return f
}

// client returns a browser-like client: a cookie jar, no redirects
// followed (tests look at them).
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := new(http.Client)
	*c = *f.ts.Client() // a copy: each client has its own cookie jar
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.Get(f.ts.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) post(c *http.Client, path string, form url.Values) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.PostForm(f.ts.URL+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", body)
	}
	return m[1]
}

// tryLogin loads the form (for its token) and posts the credentials.
func (f *fixture) tryLogin(c *http.Client, user, pw string) (*http.Response, string) {
	f.t.Helper()
	_, body := f.get(c, "/login")
	return f.post(c, "/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {csrfOf(f.t, body)}})
}

// signedIn returns a client with a session of admin.
func (f *fixture) signedIn() *http.Client {
	f.t.Helper()
	c := f.client()
	resp, body := f.tryLogin(c, "admin", testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	return c
}

// seedCert stores an account, an order and a certificate with a real DER
// for name, expiring at notAfter.
func seedCert(t testing.TB, st storage.Store, name string, notAfter time.Time) *acme.Certificate {
	t.Helper()
	return seedCertCN(t, st, name, name, notAfter)
}

// seedCertCN is seedCert with the subject's common name cn ("" for none,
// as from a CN-less CSR).
func seedCertCN(t testing.TB, st storage.Store, name, cn string, notAfter time.Time) *acme.Certificate {
	t.Helper()
	ctx := context.Background()
	acct := &acme.Account{KeyThumbprint: "tp-" + acme.NewID(), KeyJWK: "{}", Status: acme.StatusValid,
		Contact: []string{"mailto:ops@example.test"}, TOSAgreed: true}
	if err := st.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	return seedCertFor(t, st, acct, name, cn, "", notAfter)
}

// seedCertFor is seedCertCN for an existing account, with the SPIFFE ID
// identity ("" for none) as the certificate's workload identity.
func seedCertFor(t testing.TB, st storage.Store, acct *acme.Account, name, cn, identity string, notAfter time.Time) *acme.Certificate {
	t.Helper()
	ctx := context.Background()
	o := &acme.Order{AccountID: acct.ID, ID: acme.NewID(), Status: acme.StatusPending, Expires: time.Now().Add(time.Hour),
		Identifiers: []acme.Identifier{{Type: "dns", Value: name}}, Names: []string{name}}
	a := acme.Authorization{ID: acme.NewID(), AccountID: acct.ID, Type: "dns", Value: name, Status: acme.StatusPending,
		Expires: time.Now().Add(time.Hour), Challenges: []acme.Challenge{{ID: acme.NewID(), Type: "http-01", Token: acme.NewID(), Status: acme.StatusPending}}}
	o.AuthzIDs = []string{a.ID}
	if err := st.CreateOrder(ctx, o, []acme.Authorization{a}); err != nil {
		t.Fatal(err)
	}
	must(t, st.StartChallenge(ctx, a.Challenges[0].ID))
	must(t, st.CompleteChallenge(ctx, a.Challenges[0].ID, nil, time.Now()))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: []string{name},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c := &acme.Certificate{ID: acme.NewID(), Serial: hex.EncodeToString(serial.Bytes()), AccountID: acct.ID, OrderID: o.ID,
		Names: []string{name}, CommonName: cn, NotBefore: tmpl.NotBefore, NotAfter: notAfter, DER: der,
		ChainPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), CreatedAt: time.Now(), Identity: identity}
	must(t, st.CompleteFinalize(ctx, o.ID, c))
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func auditActions(t testing.TB, st storage.Store) string {
	evs, err := st.ListAuditEvents(context.Background(), "", storage.Page{})
	must(t, err)
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Actor+":"+evs[i].Action)
	}
	return strings.Join(out, " ")
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "certmint-web-test-") }
