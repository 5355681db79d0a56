package ca

import (
	"context"
	"crypto/x509"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// TestIssueWorkloadIdentity: a leaf with a URI SAN is an X509-SVID as
// go-spiffe judges one (exactly one URI SAN, CA:false, digitalSignature,
// no keyCertSign/cRLSign, a path to the trust domain's root), with its
// DNS names beside it; the same leaf without the URI is not.
func TestIssueWorkloadIdentity(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	td := spiffeid.RequireTrustDomainFromString("corp.example")
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{c.Root()})
	want := spiffeid.RequireFromPath(td, "/payments/sender")
	for _, key := range []string{"ecdsa-p256", "rsa-2048"} {
		for _, cn := range []string{"", "pay.internal"} {
			t.Run(key+"/cn="+cn, func(t *testing.T) {
				der, err := c.Issue(Template{PublicKey: genKey(t, key).Public(), CommonName: cn,
					DNSNames: []string{"pay.internal"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.9")},
					URI: want.URL(), Serial: mustSerial(t)})
				if err != nil {
					t.Fatal(err)
				}
				leaf := mustParse(t, der)
				if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want.String() || len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 1 {
					t.Fatalf("SANs: URIs %v DNS %v IPs %v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
				}
				got, _, err := x509svid.Verify([]*x509.Certificate{leaf, c.Intermediate()}, bundle, x509svid.WithTime(clock.Now()))
				if err != nil || got != want {
					t.Fatalf("x509svid.Verify = %v, %v; want %v", got, err, want)
				}
				for _, e := range leaf.Extensions {
					if e.Id.Equal(oidSAN) && e.Critical != (cn == "") {
						t.Fatalf("SAN critical = %v with CN %q (RFC 5280 §4.2.1.6: critical when the subject is empty)", e.Critical, cn)
					}
				}
			})
		}
	}
	plain := issueAt(t, c)
	if _, _, err := x509svid.Verify([]*x509.Certificate{plain, c.Intermediate()}, bundle, x509svid.WithTime(clock.Now())); err == nil {
		t.Fatal("a leaf without a URI SAN verified as an X509-SVID")
	}
}

func TestIssueRejectsBadURI(t *testing.T) {
	c := newTestCA(t, newFakeClock())
	for name, raw := range map[string]string{
		"fail/relative": "payments/sender",
		"fail/no-host":  "spiffe:///payments",
		"fail/query":    "spiffe://corp.example/payments?x=1",
		"fail/fragment": "spiffe://corp.example/payments#x",
	} {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Issue(Template{PublicKey: genKey(t, "ecdsa-p256").Public(), DNSNames: []string{"a.internal"}, URI: u, Serial: mustSerial(t)})
			if err == nil || !strings.Contains(err.Error(), "URI") {
				t.Fatalf("Issue with URI %q: %v, want a refusal", raw, err)
			}
		})
	}
}

// TestPermitsURI: URI name constraints of an imported chain name hosts
// (RFC 5280 §4.2.1.10); a chain with none permits any URI.
func TestPermitsURI(t *testing.T) {
	ch := &chain{constraints: []constraintSet{{who: `"Sub CA"`, permittedURI: []string{"corp.example", ".prod.example"}, excludedURI: []string{"bad.prod.example"}}}}
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"spiffe://corp.example/payments/sender", true},
		{"spiffe://CORP.example/x", true},
		{"spiffe://eu.prod.example/x", true},
		{"spiffe://prod.example/x", false},
		{"spiffe://sub.corp.example/x", false},
		{"spiffe://other.example/x", false},
		{"spiffe://bad.prod.example/x", false},
		{"not a uri", false},
	} {
		if why := permits(ch, "uri", tt.value); (why == "") != tt.ok {
			t.Errorf("permits(uri, %s) = %q, want ok=%v", tt.value, why, tt.ok)
		}
	}
	if why := permits(&chain{}, "uri", "spiffe://any.example/x"); why != "" {
		t.Errorf("an unconstrained chain refused a URI: %s", why)
	}
}

// TestBundleSequenceStill: an intermediate rotation leaves the roots, and
// so the bundle's sequence number, as they were.
func TestBundleSequenceStill(t *testing.T) {
	clock := newFakeClock()
	c, st := recordedCA(t, clock)
	before := c.BundleSequence()
	if before != 1 {
		t.Fatalf("one root: sequence %d, want 1", before)
	}
	if _, err := RotateIntermediate(context.Background(), st, RotateOptions{Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.ListIssuers(context.Background())
	if err := c.Adopt(recs); err != nil {
		t.Fatal(err)
	}
	if got := c.BundleSequence(); got != before {
		t.Fatalf("sequence %d after an intermediate rotation, want %d", got, before)
	}
}
