package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/crypto/acme"
)

// The workload identities of these tests, in the trust domain the
// servers run with.
const (
	testTrustDomain = "corp.example"
	senderID        = "spiffe://corp.example/payments/sender"
)

var testTD = spiffeid.RequireTrustDomainFromString(testTrustDomain)

// startIdentityServer runs certmint with --trust-domain corp.example.
func startIdentityServer(t *testing.T, args ...string) *Server {
	t.Helper()
	return StartServer(t, ServerOptions{Args: append([]string{"--trust-domain", testTrustDomain}, args...)})
}

// fetchSPIFFEBundle reads /spiffe/bundle as SPIFFE software does: go-spiffe's
// spiffebundle parses it for the trust domain.
func fetchSPIFFEBundle(t testing.TB, s *Server) *spiffebundle.Bundle {
	t.Helper()
	resp, err := s.HTTPClient().Get(strings.TrimSuffix(s.DirectoryURL(), "/acme/directory") + "/spiffe/bundle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /spiffe/bundle: %d %s", resp.StatusCode, body)
	}
	b, err := spiffebundle.Parse(testTD, body)
	if err != nil {
		t.Fatalf("go-spiffe cannot parse /spiffe/bundle: %v\n%s", err, body)
	}
	return b
}

// svidOf verifies a PEM chain (leaf first) as an X509-SVID against bundle,
// with go-spiffe as the judge, and returns its SPIFFE ID.
func svidOf(t testing.TB, chain []byte, bundle *spiffebundle.Bundle) (spiffeid.ID, error) {
	t.Helper()
	var raw [][]byte
	for rest := chain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		raw = append(raw, b.Bytes)
	}
	id, _, err := x509svid.ParseAndVerify(raw, bundle)
	return id, err
}

// TestWorkloadIdentityLego: lego registers with an EAB key that binds
// payments/sender and gets a certificate whose one URI SAN is
// spiffe://corp.example/payments/sender beside its DNS name; go-spiffe
// accepts it as an X509-SVID against the bundle from /spiffe/bundle, and
// refuses a certificate of the same root without an identity. A CSR that
// asks for a URI SAN of its own gets badCSR; once the key is revoked the
// account gets no new certificate.
func TestWorkloadIdentityLego(t *testing.T) {
	s := startIdentityServer(t)
	kid, hmac := eabCreate(t, s, "--label", "payments", "--workload", "payments/sender")
	client, err := newLegoEABClient(t, s, kid, hmac)
	if err != nil {
		t.Fatalf("register with the workload key: %v\n%s", err, s.Output())
	}
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"pay.test"}, Bundle: true})
	if err != nil {
		t.Fatalf("obtain: %v\n%s", err, s.Output())
	}
	leaf := parseLeaf(t, res.Certificate)
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != senderID || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "pay.test" {
		t.Fatalf("SANs: URIs %v, DNS %v; want exactly %s and pay.test", leaf.URIs, leaf.DNSNames, senderID)
	}
	checkCertificate(t, s, res.Certificate, []string{"pay.test"}, 90*24*time.Hour)

	bundle := fetchSPIFFEBundle(t, s)
	if auth := bundle.X509Authorities(); len(auth) != 1 || !auth[0].Equal(chainCerts(t, s.RootPEM)[0]) {
		t.Fatalf("/spiffe/bundle holds %d authorities, want the root of /roots/bundle.pem", len(auth))
	}
	id, err := svidOf(t, res.Certificate, bundle)
	if err != nil || id.String() != senderID {
		t.Fatalf("go-spiffe: %v, %v; want the X509-SVID %s", id, err, senderID)
	}

	// Same root, no identity: not an X509-SVID.
	_, plain := obtainWithLego(t, s, "plain.test")
	if id, err := svidOf(t, plain.Certificate, bundle); err == nil {
		t.Fatalf("a certificate without an identity verified as the X509-SVID %s", id)
	}

	// The identity is the binding's, never the CSR's (RFC 8555 §7.4).
	u, _ := url.Parse("spiffe://corp.example/admin")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"pay.test"}, URIs: []*url.URL{u}},
		newAccountKey(t, "ec"))
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	_, err = client.Certificate.ObtainForCSR(certificate.ObtainForCSRRequest{CSR: csr})
	wantProblem(t, err, "badCSR", http.StatusBadRequest)

	// Revoking the key withdraws the identity: no new certificate.
	if out, stderr, code := runCLI(t, nil, "admin", "eab", "revoke", kid, "--data", s.Data); code != 0 {
		t.Fatalf("admin eab revoke: %d %s%s", code, out, stderr)
	}
	_, err = client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"pay.test"}})
	wantProblem(t, err, "unauthorized", http.StatusForbidden)
}

// TestWorkloadIdentityBadInput: a workload path that is not a SPIFFE ID
// path is refused by `admin eab create` with one line and exit 2; a bad
// trust domain stops serve at start with one line and exit 2; a server
// without --trust-domain will not start while a workload key is active.
func TestWorkloadIdentityBadInput(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	for _, bad := range []string{"payments//sender", "payments/./sender", "payments/../admin", "payments/s%65nder",
		"payments/sender!", "payments/sender/", strings.Repeat("a", 2050), "", " "} {
		out, stderr, code := runCLI(t, nil, "admin", "eab", "create", "--data", s.Data, "--workload", bad)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--workload") || out != "" {
			t.Errorf("--workload %.40q: exit %d, stdout %q, stderr %q; want exit 2 and one line naming the flag", bad, code, out, stderr)
		}
	}
	if out, stderr, code := runCLI(t, nil, "admin", "eab", "list", "--data", s.Data); code != 0 || strings.Contains(out, "payments") {
		t.Errorf("after refused creates, admin eab list: exit %d, %q %q; want no key written", code, out, stderr)
	}
	for _, bad := range []string{"Corp.Example", "corp.example:8443", "spiffe://corp.example", "corp example", "corp..example", "corp.example."} {
		_, stderr, code := runCLI(t, nil, "serve", "--data", t.TempDir(), "--trust-domain", bad)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--trust-domain") {
			t.Errorf("--trust-domain %q: exit %d, stderr %q; want exit 2 and one line", bad, code, stderr)
		}
	}

	// The agent takes the HMAC key from a file, once.
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	agent := []string{"agent", "--once", "--server", s.DirectoryURL(), "--root-fingerprint", rootFingerprint(t, s), "--name", "a.test", "--out", t.TempDir()}
	for name, extra := range map[string][]string{
		"kid-without-hmac":  {"--eab-kid", "k"},
		"hmac-file-no-kid":  {"--eab-hmac-file", empty},
		"hmac-given-twice":  {"--eab-kid", "k", "--eab-hmac", "x", "--eab-hmac-file", empty},
		"hmac-file-empty":   {"--eab-kid", "k", "--eab-hmac-file", empty},
		"hmac-file-missing": {"--eab-kid", "k", "--eab-hmac-file", filepath.Join(t.TempDir(), "none")},
	} {
		_, stderr, code := runCLI(t, nil, append(agent, extra...)...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "eab") {
			t.Errorf("agent %s: exit %d, stderr %q; want exit 2 and one line", name, code, stderr)
		}
	}

	kid, _ := eabCreate(t, s, "--workload", "payments/sender")
	s.Stop()
	_, stderr, code := runCLI(t, nil, s.Args()...)
	if code != 2 || !strings.Contains(stderr, kid) || !strings.Contains(stderr, "--trust-domain") {
		t.Fatalf("serve without a trust domain and an active workload key: exit %d, %q", code, stderr)
	}
	s.opts.Args = []string{"--trust-domain", testTrustDomain}
	s.Start() // with it, the server starts
}

// TestSPIFFEBundleFollowsRootRotation: after `ca rotate root`,
// /spiffe/bundle holds both roots during the overlap with a higher
// spiffe_sequence, and go-spiffe accepts workload certificates under the
// old root and, after the switch, under the new one; then the old root
// leaves the bundle.
func TestSPIFFEBundleFollowsRootRotation(t *testing.T) {
	s := startIdentityServer(t, "--ca-poll", "300ms")
	kid, hmac := eabCreate(t, s, "--workload", "payments/sender")
	client, err := newLegoEABClient(t, s, kid, hmac)
	if err != nil {
		t.Fatal(err)
	}
	obtain := func(name string) []byte {
		t.Helper()
		res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
		if err != nil {
			t.Fatalf("obtain %s: %v\n%s", name, err, s.Output())
		}
		return res.Certificate
	}
	before := fetchSPIFFEBundle(t, s)
	seqBefore, _ := before.SequenceNumber()
	oldCert := obtain("old.rotate.test")

	const overlap = 10 * time.Second
	if o, e, code := runCLI(t, nil, "ca", "rotate", "root", "--data", s.Data, "--overlap", overlap.String()); code != 0 {
		t.Fatalf("ca rotate root: exit %d: %s%s", code, o, e)
	}
	roots := waitBundle(t, s, 2, 5*time.Second)
	s.Roots.AddCert(roots[1]) // the server's own TLS certificate moves to the new chain too
	during := fetchSPIFFEBundle(t, s)
	seqDuring, _ := during.SequenceNumber()
	if auth := during.X509Authorities(); len(auth) != 2 || !during.HasX509Authority(roots[0]) || !during.HasX509Authority(roots[1]) {
		t.Fatalf("/spiffe/bundle during the overlap holds %d authorities, want both roots", len(auth))
	}
	if seqDuring <= seqBefore {
		t.Fatalf("spiffe_sequence %d during the overlap, was %d: it must grow", seqDuring, seqBefore)
	}
	if id, err := svidOf(t, oldCert, during); err != nil || id.String() != senderID {
		t.Fatalf("certificate under the old root against the overlap bundle: %v %v", id, err)
	}

	// After the switch, new certificates chain to the new root; a consumer
	// holding the overlap bundle accepts them as it accepts the old ones.
	waitBundle(t, s, 1, overlap+10*time.Second)
	newPool := x509.NewCertPool()
	newPool.AddCert(roots[1])
	var newCert []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		newCert = obtain("new.rotate.test")
		if _, err := chainIssuer(t, newCert).Verify(x509.VerifyOptions{Roots: newPool}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuance did not switch to the new root\n%s", s.Output())
		}
	}
	if id, err := svidOf(t, newCert, during); err != nil || id.String() != senderID {
		t.Fatalf("certificate under the new root against the overlap bundle: %v %v", id, err)
	}
	after := fetchSPIFFEBundle(t, s)
	seqAfter, _ := after.SequenceNumber()
	if auth := after.X509Authorities(); len(auth) != 1 || !auth[0].Equal(roots[1]) || seqAfter <= seqDuring {
		t.Fatalf("/spiffe/bundle after the switch: %d authorities, sequence %d (was %d); want the new root alone, a higher sequence",
			len(auth), seqAfter, seqDuring)
	}
	if id, err := svidOf(t, newCert, after); err != nil || id.String() != senderID {
		t.Fatalf("certificate under the new root against the new bundle: %v %v", id, err)
	}
}

// workloadAgent creates an EAB key binding path (none when path is "")
// and runs `certmint agent --once --eab-kid … --eab-hmac-file …` for name;
// it returns the agent's --out directory.
func workloadAgent(t testing.TB, s *Server, name, path string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	args := []string{"agent", "--once", "--server", s.DirectoryURL(), "--root-fingerprint", rootFingerprint(t, s),
		"--name", name, "--out", out, "--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort)}
	if path != "" {
		kid, hmac := eabCreate(t, s, "--label", name, "--workload", path)
		hmacFile := filepath.Join(dir, "eab-hmac")
		if err := os.WriteFile(hmacFile, []byte(hmac+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--eab-kid", kid, "--eab-hmac-file", hmacFile)
	}
	stdout, stderr, code := runCLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("agent --once for %s: exit %d: %s\n%s", name, code, stderr, s.Output())
	}
	if path != "" && !strings.Contains(stdout, " identity=spiffe://"+testTrustDomain+"/"+path) {
		t.Fatalf("agent line does not name the identity: %q", stdout)
	}
	return out
}

// TestWorkloadIdentityCertbot: certbot, registering with a workload EAB
// key (--eab-kid, --eab-hmac-key), gets the same X509-SVID: the identity
// comes from the binding, whatever the client.
func TestWorkloadIdentityCertbot(t *testing.T) {
	certbotPath(t)
	s := startIdentityServer(t, "--eab-required")
	kid, hmac := eabCreate(t, s, "--workload", "payments/sender")
	dir := t.TempDir()
	runCertbot(t, s, dir, "certonly", "-d", "certbot.pay.test", "--standalone", "--http-01-port", strconv.Itoa(s.HTTPPort),
		"--http-01-address", "127.0.0.1", "--eab-kid", kid, "--eab-hmac-key", hmac)
	chain, err := os.ReadFile(filepath.Join(dir, "c", "live", "certbot.pay.test", "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	checkCertificate(t, s, chain, []string{"certbot.pay.test"}, 90*24*time.Hour)
	if id, err := svidOf(t, chain, fetchSPIFFEBundle(t, s)); err != nil || id.String() != senderID {
		t.Fatalf("certbot's certificate as an X509-SVID: %v %v; want %s", id, err, senderID)
	}
}

// TestWorkloadIdentityKeyRollover: an account that rolls its key over
// (RFC 8555 §7.3.5, x/crypto/acme's AccountKeyRollover) keeps the identity
// its EAB key bound; the certificate it orders with the new key carries it.
func TestWorkloadIdentityKeyRollover(t *testing.T) {
	s := startIdentityServer(t)
	kid, hmac := eabCreate(t, s, "--workload", "payments/sender")
	mac, err := base64.RawURLEncoding.DecodeString(hmac)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &acme.Client{Key: newAccountKey(t, "ec"), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	if _, err := c.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{KID: kid, Key: mac}}, acme.AcceptTOS); err != nil {
		t.Fatalf("register with the workload key: %v", err)
	}
	if err := c.AccountKeyRollover(ctx, newAccountKey(t, "ec")); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	stop := serveHTTP01(t, s, func(token string) string { ka, _ := c.HTTP01ChallengeResponse(token); return ka })
	order := readyOrder(ctx, t, c, "rolled.pay.test")
	stop()
	ders, _, err := c.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "rolled.pay.test"), true)
	if err != nil {
		t.Fatalf("finalize with the new key: %v", err)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		t.Fatal(err)
	}
	if id, err := x509svid.IDFromCert(leaf); err != nil || id.String() != senderID {
		t.Fatalf("identity after the key rollover: %v %v; want %s", id, err, senderID)
	}
}
