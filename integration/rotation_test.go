package integration

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
)

// caStatus runs `certmint ca status --json` against target (--data DIR or
// --db DSN).
type issuerStatus struct {
	ID       string    `json:"id"`
	Role     string    `json:"role"`
	State    string    `json:"state"`
	NotAfter time.Time `json:"not_after"`
	InBundle bool      `json:"in_bundle"`
}

func caStatus(t *testing.T, target ...string) []issuerStatus {
	t.Helper()
	out, errOut, code := runCLI(t, nil, append([]string{"ca", "status", "--json"}, target...)...)
	if code != 0 {
		t.Fatalf("ca status: exit %d: %s", code, errOut)
	}
	var st []issuerStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("ca status --json: %v\n%s", err, out)
	}
	return st
}

// chainCerts parses every certificate of a PEM chain.
func chainCerts(t testing.TB, chain []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, chain = pem.Decode(chain)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// verifyChain checks a served chain (leaf, intermediate) up to roots and
// that no certificate outlives the one above it.
func verifyChain(t testing.TB, chain []byte, roots *x509.CertPool, at time.Time) [][]*x509.Certificate {
	t.Helper()
	certs := chainCerts(t, chain)
	if len(certs) < 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(certs))
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	paths, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatalf("chain of %v does not verify: %v", certs[0].DNSNames, err)
	}
	for _, p := range paths {
		for i := 0; i+1 < len(p); i++ {
			if p[i].NotAfter.After(p[i+1].NotAfter) {
				t.Errorf("%q notAfter %s is after its issuer %q's %s", p[i].Subject, p[i].NotAfter, p[i+1].Subject, p[i+1].NotAfter)
			}
		}
	}
	return paths
}

// TestIntermediateRotationWhileServing: certificate A, then `ca rotate
// intermediate` from the command line while the server runs; certificate
// B comes from the new intermediate without a restart, A's chain is still
// served as issued and verifies, and revoking A lists it on the old
// issuer's CRL (at the URL in A), not on the new one's.
func TestIntermediateRotationWhileServing(t *testing.T) {
	for name, dsn := range engines(t) {
		t.Run(name, func(t *testing.T) {
			db := dsn(t)
			s := StartServer(t, ServerOptions{DB: db, Args: []string{"--ca-poll", "300ms"}})
			target := []string{"--data", s.Data}
			if db != "" {
				target = []string{"--db", db}
			}
			clientA, resA := obtainWithLegoClient(t, s, "a.rotate.test")
			leafA, interA := parseLeaf(t, resA.Certificate), chainIssuer(t, resA.Certificate)
			verifyChain(t, resA.Certificate, s.Roots, time.Now())

			out, errOut, code := runCLI(t, nil, append([]string{"ca", "rotate", "intermediate"}, target...)...)
			if code != 0 {
				t.Fatalf("ca rotate intermediate: exit %d: %s%s", code, out, errOut)
			}
			rotatedAt := time.Now()
			st := caStatus(t, target...)
			states := map[string]int{}
			for _, iss := range st {
				states[iss.Role+"/"+iss.State]++
			}
			if states["intermediate/active"] != 1 || states["intermediate/retiring"] != 1 || states["root/active"] != 1 {
				t.Fatalf("ca status after rotation: %+v", st)
			}

			// B comes from the new intermediate, without restart, within
			// a few polls.
			var resB *certificate.Resource
			var interB *x509.Certificate
			for i := 0; ; i++ {
				_, resB = obtainWithLegoClient(t, s, "b.rotate.test")
				interB = chainIssuer(t, resB.Certificate)
				if !interB.Equal(interA) {
					break
				}
				if i == 5 {
					t.Fatalf("certificate B still from the old intermediate %s after the rotation\n%s", time.Since(rotatedAt), s.Output())
				}
				time.Sleep(500 * time.Millisecond)
			}
			t.Logf("new intermediate used %s after `ca rotate intermediate`", time.Since(rotatedAt).Round(time.Millisecond))
			verifyChain(t, resB.Certificate, s.Roots, time.Now())
			leafB := parseLeaf(t, resB.Certificate)
			if string(leafB.AuthorityKeyId) == string(leafA.AuthorityKeyId) {
				t.Fatal("B's AKI is A's")
			}

			// A is still served with the chain it was issued with.
			again, err := clientA.Certificate.Get(resA.CertURL, true)
			if err != nil {
				t.Fatalf("download A again: %v", err)
			}
			if !chainIssuer(t, again.Certificate).Equal(interA) {
				t.Fatal("A's chain is no longer its own intermediate")
			}
			verifyChain(t, again.Certificate, s.Roots, time.Now())

			// Revoking A puts it on the old issuer's CRL, at the URL in A.
			if err := clientA.Certificate.Revoke(resA.Certificate); err != nil {
				t.Fatalf("revoke A: %v\n%s", err, s.Output())
			}
			urlA, urlB := leafA.CRLDistributionPoints[0], leafB.CRLDistributionPoints[0]
			if urlA == urlB || !strings.HasSuffix(urlA, "/crl/intermediate.crl") {
				t.Fatalf("CRL URLs: A %s, B %s; want the first intermediate's URL and one of the new issuer's own", urlA, urlB)
			}
			deadline := time.Now().Add(8 * time.Second)
			for {
				rl, err := x509.ParseRevocationList(fetchCRL(t, urlA))
				if err != nil {
					t.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(interA); err != nil {
					t.Fatalf("CRL at %s is not signed by A's intermediate: %v", urlA, err)
				}
				if crlLists(rl, leafA.SerialNumber) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the old issuer's CRL does not list A\n%s", s.Output())
				}
				time.Sleep(200 * time.Millisecond)
			}
			rlB, err := x509.ParseRevocationList(fetchCRL(t, urlB))
			if err != nil {
				t.Fatal(err)
			}
			if err := rlB.CheckSignatureFrom(interB); err != nil {
				t.Fatalf("CRL at %s is not signed by the new intermediate: %v", urlB, err)
			}
			if crlLists(rlB, leafA.SerialNumber) {
				t.Fatal("the new issuer's CRL lists A, which it did not issue")
			}
		})
	}
}
