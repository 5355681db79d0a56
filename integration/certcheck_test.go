package integration

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// parsePEMCerts parses every CERTIFICATE block of a PEM chain.
func parsePEMCerts(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// lintRFC5280 fails the test on any error or fatal result of zlint's
// RFC 5280 lints. CA/Browser Forum lints are not asserted: this is a
// private CA.
func lintRFC5280(t testing.TB, der []byte) {
	t.Helper()
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("zcrypto parse: %v", err)
	}
	ran := 0
	for name, r := range zlint.LintCertificate(zc).Results {
		if r.LintMetadata.Source != lint.RFC5280 {
			continue
		}
		ran++
		if r.Status == lint.Error || r.Status == lint.Fatal {
			t.Errorf("zlint %s: %s: %s", name, r.Status, r.Details)
		}
	}
	if ran == 0 {
		t.Fatal("no RFC 5280 lint ran")
	}
}
