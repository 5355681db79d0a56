package ca

import (
	"net"
	"net/url"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// TestZlintRFC5280 runs zlint over everything the CA signs and fails on any
// RFC 5280 lint that reports an error or fatal. CA/B Forum lints are not
// asserted: this is a private CA and, e.g., its roots carry no organisation.
func TestZlintRFC5280(t *testing.T) {
	c := newTestCA(t, newFakeClock())
	issue := func(tmpl Template) []byte {
		t.Helper()
		tmpl.Serial = mustSerial(t)
		der, err := c.Issue(tmpl)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		return der
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{"root", c.Root().Raw},
		{"intermediate", c.Intermediate().Raw},
		{"leaf/ecdsa-cn-dns-ips", issue(Template{
			PublicKey: genKey(t, "ecdsa-p256").Public(), CommonName: "svc.internal",
			DNSNames: []string{"svc.internal"}, IPAddresses: []net.IP{net.ParseIP("10.1.2.3"), net.ParseIP("fd00::1")},
			CRLURL: "http://ca.internal/crl",
		})},
		{"leaf/rsa-empty-subject", issue(Template{
			PublicKey: genKey(t, "rsa-2048").Public(), DNSNames: []string{"rsa.internal"},
		})},
		// A workload identity: the SPIFFE ID as the one URI SAN beside
		// the DNS name, with and without a subject.
		{"leaf/spiffe-uri-empty-subject", issue(Template{
			PublicKey: genKey(t, "ecdsa-p256").Public(), DNSNames: []string{"pay.internal"},
			URI: &url.URL{Scheme: "spiffe", Host: "corp.example", Path: "/payments/sender"},
		})},
		{"leaf/spiffe-uri-rsa-cn", issue(Template{
			PublicKey: genKey(t, "rsa-2048").Public(), CommonName: "pay.internal", DNSNames: []string{"pay.internal"},
			URI: &url.URL{Scheme: "spiffe", Host: "corp.example", Path: "/payments/sender"},
		})},
		{"leaf/server-profile", issue(Template{
			PublicKey: genKey(t, "ecdsa-p256").Public(), CommonName: "localhost",
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Profile: ServerProfile(),
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zc, err := zx509.ParseCertificate(tt.der)
			if err != nil {
				t.Fatalf("zcrypto parse: %v", err)
			}
			rs := zlint.LintCertificate(zc)
			ran := 0
			for name, r := range rs.Results {
				if r.LintMetadata.Source != lint.RFC5280 {
					continue
				}
				ran++
				if r.Status == lint.Error || r.Status == lint.Fatal {
					t.Errorf("%s: %s: %s", name, r.Status, r.Details)
				}
			}
			if ran == 0 {
				t.Fatal("no RFC 5280 lints ran")
			}
		})
	}
}
