package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
)

func genKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSerial(t *testing.T) *big.Int {
	t.Helper()
	s, err := NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssue(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	now := clock.Now()
	tests := []struct {
		name    string
		key     string
		cn      string
		dns     []string
		ips     []net.IP
		crl     string
		wantKU  x509.KeyUsage
		wantSAN bool // SAN critical: subject is empty
	}{
		{
			name: "ok/ecdsa-dns-ipv4-ipv6", key: "ecdsa-p256", cn: "svc.internal",
			dns: []string{"svc.internal", "*.svc.internal"}, ips: []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("fd00::7")},
			wantKU: x509.KeyUsageDigitalSignature,
		},
		{
			name: "ok/rsa-2048-key-encipherment", key: "rsa-2048", cn: "rsa.internal", dns: []string{"rsa.internal"},
			wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		},
		{
			name: "ok/empty-subject-critical-san", key: "ecdsa-p384", dns: []string{"nocn.internal"},
			wantKU: x509.KeyUsageDigitalSignature, wantSAN: true,
		},
		{
			name: "ok/ip-only-cn-ip", key: "ed25519", cn: "127.0.0.1", ips: []net.IP{net.ParseIP("127.0.0.1")},
			wantKU: x509.KeyUsageDigitalSignature,
		},
		{
			name: "ok/crl-distribution-point", key: "ecdsa-p256", dns: []string{"crl.internal"},
			crl: "http://ca.internal/crl", wantKU: x509.KeyUsageDigitalSignature, wantSAN: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := genKey(t, tt.key)
			serial := mustSerial(t)
			der, err := c.Issue(Template{
				PublicKey: key.Public(), CommonName: tt.cn, DNSNames: tt.dns, IPAddresses: tt.ips,
				Profile: DefaultProfile(), CRLURL: tt.crl, Serial: serial,
			})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			leaf := mustParse(t, der)

			// The chain in the ACME download verifies to the root for both
			// uses of mutual TLS.
			chain := pemBlocks(c.ChainPEM(der))
			if len(chain) != 2 || !bytes.Equal(chain[0], der) || !bytes.Equal(chain[1], c.Intermediate().Raw) {
				t.Fatalf("ChainPEM is not leaf+intermediate")
			}
			for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				roots, inters := x509.NewCertPool(), x509.NewCertPool()
				roots.AddCert(c.Root())
				inters.AddCert(mustParse(t, chain[1]))
				opts := x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{eku}}
				if len(tt.dns) > 0 {
					opts.DNSName = tt.dns[0]
				}
				if _, err := leaf.Verify(opts); err != nil {
					t.Errorf("Verify(eku %v): %v", eku, err)
				}
			}

			if leaf.SerialNumber.Cmp(serial) != 0 {
				t.Errorf("serial = %x, want %x", leaf.SerialNumber, serial)
			}
			if leaf.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q, want %q", leaf.Subject.CommonName, tt.cn)
			}
			if tt.cn == "" && len(leaf.RawSubject) != 2 { // empty SEQUENCE
				t.Errorf("subject not empty: %v", leaf.Subject)
			}
			if !slices.Equal(leaf.DNSNames, tt.dns) {
				t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, tt.dns)
			}
			if len(leaf.IPAddresses) != len(tt.ips) {
				t.Fatalf("IPAddresses = %v, want %v", leaf.IPAddresses, tt.ips)
			}
			for i := range tt.ips {
				if !leaf.IPAddresses[i].Equal(tt.ips[i]) {
					t.Errorf("IP %d = %v, want %v", i, leaf.IPAddresses[i], tt.ips[i])
				}
			}
			if leaf.IsCA || !leaf.BasicConstraintsValid {
				t.Errorf("BasicConstraints: IsCA=%v valid=%v", leaf.IsCA, leaf.BasicConstraintsValid)
			}
			if leaf.KeyUsage != tt.wantKU {
				t.Errorf("KeyUsage = %v, want %v", leaf.KeyUsage, tt.wantKU)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
			}
			crit := map[string]bool{}
			for _, e := range leaf.Extensions {
				crit[e.Id.String()] = e.Critical
			}
			if !crit[oidBasicConstraints.String()] || !crit[oidKeyUsage.String()] {
				t.Errorf("BasicConstraints/KeyUsage not critical: %v", crit)
			}
			if got := crit[oidSAN.String()]; got != tt.wantSAN {
				t.Errorf("SAN critical = %v, want %v", got, tt.wantSAN)
			}
			if !bytes.Equal(leaf.SubjectKeyId, method1SKI(t, leaf)) {
				t.Errorf("SKI is not RFC 5280 method 1")
			}
			if !bytes.Equal(leaf.AuthorityKeyId, c.Intermediate().SubjectKeyId) {
				t.Errorf("AKI != intermediate SKI")
			}
			if want := now.Add(-time.Minute); !leaf.NotBefore.Equal(want) {
				t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 90*24*time.Hour {
				t.Errorf("lifetime = %v, want 90 days", got)
			}
			if tt.crl != "" && !slices.Equal(leaf.CRLDistributionPoints, []string{tt.crl}) {
				t.Errorf("CRLDistributionPoints = %v", leaf.CRLDistributionPoints)
			}
			if tt.crl == "" && len(leaf.CRLDistributionPoints) != 0 {
				t.Errorf("unexpected CRLDistributionPoints %v", leaf.CRLDistributionPoints)
			}
		})
	}
}

// method1SKI recomputes RFC 5280 §4.2.1.2 method 1 from the parsed leaf.
func method1SKI(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}

func TestIssueValidity(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	now := clock.Now()
	inter := c.Intermediate()
	tests := []struct {
		name          string
		notBefore     time.Time
		notAfter      time.Time
		profile       Profile
		wantNotBefore time.Time
		wantNotAfter  time.Time
	}{
		{
			name: "ok/zero-profile-is-default", wantNotBefore: now.Add(-time.Minute),
			wantNotAfter: now.Add(-time.Minute).Add(90 * 24 * time.Hour),
		},
		{
			name: "ok/profile-validity", profile: Profile{Name: "short", Validity: time.Hour, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
			wantNotBefore: now.Add(-time.Minute), wantNotAfter: now.Add(59 * time.Minute),
		},
		{
			name: "ok/explicit-window", notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour),
			wantNotBefore: now.Add(time.Hour), wantNotAfter: now.Add(48 * time.Hour),
		},
		{
			name: "ok/clamped-to-intermediate", notAfter: inter.NotAfter.AddDate(1, 0, 0),
			wantNotBefore: now.Add(-time.Minute), wantNotAfter: inter.NotAfter,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := c.Issue(Template{
				PublicKey: genKey(t, "ecdsa-p256").Public(), DNSNames: []string{"v.internal"},
				NotBefore: tt.notBefore, NotAfter: tt.notAfter, Profile: tt.profile, Serial: mustSerial(t),
			})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			leaf := mustParse(t, der)
			if !leaf.NotBefore.Equal(tt.wantNotBefore) || !leaf.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("validity = %v .. %v, want %v .. %v", leaf.NotBefore, leaf.NotAfter, tt.wantNotBefore, tt.wantNotAfter)
			}
		})
	}
}

func TestIssueRejects(t *testing.T) {
	c := newTestCA(t, newFakeClock())
	pub := genKey(t, "ecdsa-p256").Public()
	tooBig := new(big.Int).Lsh(big.NewInt(1), 160)
	tests := []struct {
		name string
		tmpl Template
		want string
	}{
		{"fail/no-key", Template{DNSNames: []string{"a.internal"}, Serial: big.NewInt(1)}, "no public key"},
		{"fail/no-serial", Template{PublicKey: pub, DNSNames: []string{"a.internal"}}, "serial"},
		{"fail/negative-serial", Template{PublicKey: pub, DNSNames: []string{"a.internal"}, Serial: big.NewInt(-5)}, "serial"},
		{"fail/serial-too-long", Template{PublicKey: pub, DNSNames: []string{"a.internal"}, Serial: tooBig}, "20 octets"},
		{"fail/no-names", Template{PublicKey: pub, Serial: big.NewInt(1)}, "no DNS names"},
		{"fail/cn-not-in-names", Template{PublicKey: pub, CommonName: "b.internal", DNSNames: []string{"a.internal"}, Serial: big.NewInt(1)}, "common name"},
		{"fail/bad-dns-name", Template{PublicKey: pub, DNSNames: []string{"a b"}, Serial: big.NewInt(1)}, "invalid DNS name"},
		{"fail/profile-without-eku", Template{PublicKey: pub, DNSNames: []string{"a.internal"}, Serial: big.NewInt(1), Profile: Profile{Name: "x", Validity: time.Hour}}, "extended key usage"},
		{"fail/inverted-window", Template{PublicKey: pub, DNSNames: []string{"a.internal"}, Serial: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(-time.Hour)}, "NotAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Issue(tt.tmpl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewSerial(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for range n {
		s, err := NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 {
			t.Fatalf("serial %v not positive", s)
		}
		if s.BitLen() > 127 {
			t.Fatalf("serial %x has %d bits, want <= 127", s, s.BitLen())
		}
		k := s.String()
		if seen[k] {
			t.Fatalf("duplicate serial %x", s)
		}
		seen[k] = true
	}
}
