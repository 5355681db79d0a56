package workload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"ok/two-segments", "payments/sender", "/payments/sender"},
		{"ok/leading-slash", "/payments/sender", "/payments/sender"},
		{"ok/one-segment", "billing", "/billing"},
		{"ok/spec-charset", "ns/Team-A_1.x/sa/web", "/ns/Team-A_1.x/sa/web"},
		{"ok/spaces-trimmed", "  payments/sender ", "/payments/sender"},
		{"fail/empty", "", ""},
		{"fail/root", "/", ""},
		{"fail/empty-segment", "payments//sender", ""},
		{"fail/trailing-slash", "payments/sender/", ""},
		{"fail/dot", "payments/./sender", ""},
		{"fail/dotdot", "payments/../admin", ""},
		{"fail/dotdot-last", "payments/..", ""},
		{"fail/percent-encoding", "payments/s%65nder", ""},
		{"fail/space-inside", "pay ments", ""},
		{"fail/colon", "payments:sender", ""},
		{"fail/non-ascii", "paymènts", ""},
		{"fail/query", "payments?x=1", ""},
		{"fail/whole-id", "spiffe://corp.example/payments/sender", ""},
		{"fail/too-long", strings.Repeat("a", MaxIDLength), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePath(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParsePath(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// What certmint accepts, SPIFFE software accepts.
			if _, err := spiffeid.FromString("spiffe://corp.example" + got); err != nil {
				t.Fatalf("go-spiffe refuses the accepted path %q: %v", got, err)
			}
		})
	}
}

func TestParseTrustDomain(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"ok/dns-like", "corp.example", true},
		{"ok/underscore-dash", "prod_eu-1.example", true},
		{"fail/empty", "", false},
		{"fail/uppercase", "Corp.Example", false},
		{"fail/uri", "spiffe://corp.example", false},
		{"fail/port", "corp.example:443", false},
		{"fail/path", "corp.example/payments", false},
		{"fail/space", "corp example", false},
		{"fail/percent", "corp%2eexample", false},
		{"fail/too-long", strings.Repeat("a", MaxTrustDomainLength+1), false},
		// go-spiffe takes these; Go's x509 refuses a URI SAN with that host.
		{"fail/leading-dot", ".corp.example", false},
		{"fail/trailing-dot", "corp.example.", false},
		{"fail/empty-label", "corp..example", false},
		{"ok/longest", strings.Repeat("a", MaxTrustDomainLength), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			td, err := ParseTrustDomain(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseTrustDomain(%q) = %v, %v; want ok=%v", tc.in, td, err, tc.ok)
			}
			if tc.ok && td.Name() != tc.in {
				t.Fatalf("trust domain %q, want %q", td.Name(), tc.in)
			}
			if tc.ok {
				parsesAsURISAN(t, "spiffe://"+tc.in+"/a")
			}
		})
	}
}

// parsesAsURISAN checks that a certificate whose URI SAN is uri can be
// read back by Go's x509, as every Go receiver must.
func parsesAsURISAN(t *testing.T, uri string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("a certificate naming %s cannot be parsed: %v", uri, err)
	}
}

func TestID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("corp.example")
	id, err := ID(td, "/payments/sender")
	if err != nil || id.String() != "spiffe://corp.example/payments/sender" {
		t.Fatalf("ID = %q, %v", id, err)
	}
	if _, err := ID(spiffeid.TrustDomain{}, "/payments/sender"); !errors.Is(err, ErrNoTrustDomain) {
		t.Fatalf("no trust domain: %v, want ErrNoTrustDomain", err)
	}
	// The path alone fits, with this trust domain the ID does not.
	fits := "/" + strings.Repeat("a", MaxIDLength-len("spiffe://x/"))
	if _, err := ParsePath(fits); err != nil {
		t.Fatalf("ParsePath of a %d-byte path: %v", len(fits), err)
	}
	if id, err := ID(spiffeid.RequireTrustDomainFromString("x"), fits); err != nil || len(id.String()) != MaxIDLength {
		t.Fatalf("ID of exactly %d bytes: %d, %v", MaxIDLength, len(id.String()), err)
	}
	if _, err := ID(td, fits); err == nil {
		t.Fatal("an ID over 2048 bytes was accepted")
	}
}
