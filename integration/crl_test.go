package integration

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCRLRevokeWithLego: lego revokes a certificate with reason
// keyCompromise; the CRL at the certificate's own distribution point
// (RFC 5280 §4.2.1.13) lists it within seconds, signed by the issuer, and
// the real openssl reads the serial and the reason from it.
func TestCRLRevokeWithLego(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if isCI() {
			t.Fatal("openssl not installed")
		}
		t.Skip("openssl not installed (apt-get install openssl)")
	}
	s := StartServer(t, ServerOptions{})
	client, res := obtainWithLegoClient(t, s, "crl.revoke.test")
	leaf := parseLeaf(t, res.Certificate)
	if len(leaf.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate CRL distribution points: %v, want one", leaf.CRLDistributionPoints)
	}
	crlURL := leaf.CRLDistributionPoints[0]
	if !strings.HasPrefix(crlURL, "http://") || !strings.Contains(crlURL, ":"+itoa(s.CRLPort)+"/") {
		t.Fatalf("CRL URL %q is not plain HTTP on the CRL port %d", crlURL, s.CRLPort)
	}
	issuer := chainIssuer(t, res.Certificate)

	reason := uint(1) // keyCompromise, RFC 5280 §5.3.1
	if err := client.Certificate.RevokeWithReason(res.Certificate, &reason); err != nil {
		t.Fatalf("lego revoke: %v\nserver:\n%s", err, s.Output())
	}
	revokedAt := time.Now()

	// The CRL is republished within seconds of a revocation.
	var der []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		der = fetchCRL(t, crlURL)
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("parse CRL from %s: %v", crlURL, err)
		}
		if err := rl.CheckSignatureFrom(issuer); err != nil {
			t.Fatalf("CRL not signed by the certificate's issuer: %v", err)
		}
		if crlLists(rl, leaf.SerialNumber) {
			t.Logf("CRL lists serial %s %s after the revocation", leaf.SerialNumber.Text(16), time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL from %s does not list serial %x 5s after revocation", crlURL, leaf.SerialNumber)
		}
		time.Sleep(200 * time.Millisecond)
	}

	file := filepath.Join(t.TempDir(), "intermediate.crl")
	if err := os.WriteFile(file, der, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", file, "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	text := string(out)
	// openssl prints serials in uppercase hex, padded to whole bytes.
	want := strings.ToUpper(leaf.SerialNumber.Text(16))
	var entry string
	for _, block := range strings.Split(text, "Serial Number:")[1:] {
		serial := strings.TrimSpace(strings.SplitN(block, "\n", 2)[0])
		if strings.TrimLeft(serial, "0") == strings.TrimLeft(want, "0") {
			entry = block
		}
	}
	if entry == "" {
		t.Fatalf("openssl does not list serial %s:\n%s", want, text)
	}
	if next := strings.Index(entry, "Serial Number:"); next > 0 {
		entry = entry[:next]
	}
	if !strings.Contains(entry, "Key Compromise") {
		t.Fatalf("openssl does not show reason Key Compromise for %s:\n%s", want, text)
	}
}

func fetchCRL(t *testing.T, u string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("fetch CRL: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch CRL %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

func crlLists(rl *x509.RevocationList, serial *big.Int) bool {
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

// chainIssuer is the second certificate of a PEM chain: the intermediate.
func chainIssuer(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	_, rest := pem.Decode(chain)
	block, _ := pem.Decode(rest)
	if block == nil {
		t.Fatal("the chain has no issuer certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
