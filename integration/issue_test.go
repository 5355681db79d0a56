package integration

import (
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
)

// TestLegoIssuance obtains certificates with the lego library over every
// challenge type and identifier kind, and checks each certificate.
func TestLegoIssuance(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	cases := []struct {
		name      string
		challenge string
		domains   []string
	}{
		{"ok/http-01", "http-01", []string{"svc.test"}},
		{"ok/multi-name", "http-01", []string{"a.svc.test", "b.svc.test", "c.svc.test"}},
		{"ok/ipv4", "http-01", []string{"127.0.0.1"}},
		{"ok/ipv6", "http-01-v6", []string{"::1"}},
		{"ok/tls-alpn-01", "tls-alpn-01", []string{"alpn.svc.test"}},
		{"ok/tls-alpn-01-ip", "tls-alpn-01", []string{"127.0.0.1"}},
		{"ok/dns-01", "dns-01", []string{"dns.svc.test"}},
		{"ok/wildcard", "dns-01", []string{"*.wild.svc.test", "wild.svc.test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := newLegoClient(t, s, "ec")
			switch tc.challenge {
			case "http-01-v6":
				if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("::1", strconv.Itoa(s.HTTPPort))); err != nil {
					t.Fatal(err)
				}
			case "tls-alpn-01":
				client.Challenge.Remove("http-01")
				if err := client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(s.TLSPort))); err != nil {
					t.Fatal(err)
				}
			case "dns-01":
				client.Challenge.Remove("http-01")
				if err := client.Challenge.SetDNS01Provider(&dnsProvider{s.DNS},
					dns01.AddRecursiveNameservers([]string{s.DNS.Addr}),
					dns01.DisableAuthoritativeNssPropagationRequirement(),
					dns01.PropagationWait(0, true)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: tc.domains, Bundle: true})
			if err != nil {
				t.Fatalf("obtain: %v\n%s", err, s.Output())
			}
			checkCertificate(t, s, res.Certificate, tc.domains, 90*24*time.Hour)
		})
	}
	t.Run("ok/revoke", func(t *testing.T) {
		client, _ := newLegoClient(t, s, "rsa")
		res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"revoke.svc.test"}, Bundle: true})
		if err != nil {
			t.Fatal(err)
		}
		reason := uint(4) // superseded
		if err := client.Certificate.RevokeWithReason(res.Certificate, &reason); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		err = client.Certificate.RevokeWithReason(res.Certificate, &reason)
		wantProblem(t, err, "alreadyRevoked", 400)
	})
}

// dnsProvider answers dns-01 through the test's DNS server.
type dnsProvider struct{ dns *DNSServer }

func (p *dnsProvider) Present(domain, token, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	p.dns.SetTXT(info.FQDN, info.Value)
	return nil
}

func (p *dnsProvider) CleanUp(domain, token, keyAuth string) error {
	p.dns.ClearTXT(dns01.GetChallengeInfo(domain, keyAuth).FQDN)
	return nil
}

// checkCertificate parses a chain the server returned and checks what a
// user relies on: the chain to the root, validity, EKUs, SANs, and zlint's
// RFC 5280 lints.
func checkCertificate(t testing.TB, s *Server, chainPEM []byte, names []string, validity time.Duration) *x509.Certificate {
	t.Helper()
	certs := parsePEMCerts(t, chainPEM)
	if len(certs) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(certs))
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			t.Fatalf("verify for EKU %v: %v", eku, err)
		}
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < validity-time.Hour || got > validity+time.Hour {
		t.Fatalf("validity %s, want about %s", got, validity)
	}
	if time.Now().Before(leaf.NotBefore) || time.Now().After(leaf.NotAfter) {
		t.Fatalf("not valid now: %s - %s", leaf.NotBefore, leaf.NotAfter)
	}
	var got []string
	got = append(got, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		got = append(got, ip.String())
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		if !containsStr(got, n) {
			t.Fatalf("SANs %v lack %q", got, n)
		}
	}
	if len(got) != len(names) {
		t.Fatalf("SANs %v, want exactly %v", got, names)
	}
	if len(leaf.SubjectKeyId) == 0 || len(leaf.AuthorityKeyId) == 0 {
		t.Fatal("leaf lacks SKI or AKI")
	}
	lintRFC5280(t, leaf.Raw)
	return leaf
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}
