package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRoot makes a root valid from now-1h for life and writes its
// certificate and PKCS#8 key into dir.
func writeRoot(t *testing.T, dir string, now time.Time, life time.Duration) (certPath, keyPath string, root *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := caTemplate("Test Root", key.Public(), now, 1)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(life)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "root.pem"), filepath.Join(dir, "root.key")
	if err := os.WriteFile(certPath, certPEM(der), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, mustParse(t, der), key
}

func TestPermits(t *testing.T) {
	clock := newFakeClock()
	dir := filepath.Join(t.TempDir(), "ca")
	_, err := Init(InitOptions{Dir: dir, Now: clock.Now, Logger: quietLogger(), Constraints: NameConstraints{
		PermittedDNS: []string{"svc.test"}, ExcludedDNS: []string{"bad.svc.test"},
		PermittedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, typ, value string
		ok               bool
	}{
		{"ok/below", "dns", "a.svc.test", true},
		{"ok/itself", "dns", "svc.test", true},
		{"ok/case", "dns", "A.SVC.TEST", true},
		{"ok/wildcard", "dns", "*.ok.svc.test", true},
		{"ok/ip", "ip", "10.1.2.3", true},
		{"fail/outside", "dns", "b.other.test", false},
		{"fail/suffix-not-label", "dns", "evilsvc.test", false},
		{"fail/excluded", "dns", "bad.svc.test", false},
		{"fail/below-excluded", "dns", "x.bad.svc.test", false},
		{"fail/wildcard-over-excluded", "dns", "*.svc.test", false},
		{"fail/ip-outside", "ip", "192.168.1.1", false},
		{"fail/ipv6", "ip", "::1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			why := c.Permits(tt.typ, tt.value)
			if (why == "") != tt.ok {
				t.Fatalf("Permits(%s, %s) = %q, want ok=%v", tt.typ, tt.value, why, tt.ok)
			}
		})
	}
	// Issue applies the same rule, and what it issues verifies under
	// crypto/x509's own name-constraint checks.
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := NewSerial()
	if _, err := c.Issue(Template{PublicKey: leafKey.Public(), DNSNames: []string{"b.other.test"}, Serial: serial}); err == nil {
		t.Fatal("Issue certified a name outside the constraints")
	}
	der, err := c.Issue(Template{PublicKey: leafKey.Public(), DNSNames: []string{"a.svc.test"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(c.Root())
	inters.AddCert(c.Intermediate())
	if _, err := mustParse(t, der).Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: clock.Now()}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestPermitsClosesOtherTypes: permitting only DNS names closes IP
// addresses, in the certificate as in Permits.
func TestPermitsClosesOtherTypes(t *testing.T) {
	clock := newFakeClock()
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := Init(InitOptions{Dir: dir, Now: clock.Now, Logger: quietLogger(),
		Constraints: NameConstraints{PermittedDNS: []string{"svc.test"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if why := c.Permits("ip", "127.0.0.1"); !strings.Contains(why, "permits no IP addresses") {
		t.Fatalf("Permits(ip) = %q", why)
	}
	if !c.Intermediate().PermittedDNSDomainsCritical || len(c.Intermediate().ExcludedIPRanges) != 2 {
		t.Fatalf("intermediate constraints: %+v", c.Intermediate().ExcludedIPRanges)
	}
}

// TestNoLeafOutlivesItsIssuers: a root that ends in ten days bounds the
// intermediate certmint makes under it, and every leaf below both.
func TestNoLeafOutlivesItsIssuers(t *testing.T) {
	clock := newFakeClock()
	tmp := t.TempDir()
	rootCert, rootKey, root, _ := writeRoot(t, tmp, clock.Now(), 10*24*time.Hour)
	dir := filepath.Join(tmp, "ca")
	if _, err := Init(InitOptions{Dir: dir, RootCert: rootCert, RootKey: rootKey, Now: clock.Now, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Intermediate().NotAfter.After(root.NotAfter) {
		t.Fatalf("intermediate ends %s, after its root %s", c.Intermediate().NotAfter, root.NotAfter)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := NewSerial()
	der, err := c.Issue(Template{PublicKey: key.Public(), DNSNames: []string{"a.test"}, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustParse(t, der)
	if leaf.NotAfter.After(c.Intermediate().NotAfter) || leaf.NotAfter.After(root.NotAfter) {
		t.Fatalf("leaf ends %s, after an issuer (intermediate %s, root %s)", leaf.NotAfter, c.Intermediate().NotAfter, root.NotAfter)
	}
}

// TestOfflineRootImport: the CSR asks for what the intermediate needs;
// until it is imported Open says ErrPending; an imported intermediate's
// constraints are read.
func TestOfflineRootImport(t *testing.T) {
	clock := newFakeClock()
	tmp := t.TempDir()
	rootCert, _, root, rootKey := writeRoot(t, tmp, clock.Now(), 365*24*time.Hour)
	dir := filepath.Join(tmp, "ca")
	res, err := Init(InitOptions{Dir: dir, OfflineRoot: rootCert, CSROut: filepath.Join(tmp, "int.csr"), Now: clock.Now, Logger: quietLogger(),
		Constraints: NameConstraints{PermittedDNS: []string{"svc.test"}}})
	if err != nil || !res.Pending {
		t.Fatalf("Init: %+v, %v", res, err)
	}
	if _, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()}); !errors.Is(err, ErrPending) {
		t.Fatalf("Open while pending: %v", err)
	}
	block, _ := pem.Decode(res.CSR)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// Sign as `openssl x509 -req -copy_extensions copyall` would.
	serial, _ := NewSerial()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: csr.Subject, NotBefore: clock.Now().Add(-time.Hour),
		NotAfter: clock.Now().Add(30 * 24 * time.Hour), ExtraExtensions: csr.Extensions}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter := mustParse(t, der)
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero || inter.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("the CSR does not ask for a pathlen-0 CA with keyCertSign and cRLSign: %+v", inter)
	}
	file := filepath.Join(tmp, "int.pem")
	if err := os.WriteFile(file, append(certPEM(der), certPEM(root.Raw)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ImportIntermediate(dir, file, clock.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Permits("dns", "a.other.test") == "" || c.Permits("dns", "a.svc.test") != "" {
		t.Fatal("the imported intermediate's constraints are not applied")
	}
	if got := c.Issuers()[0].KeyLocation; got != "offline" {
		t.Fatalf("root key location %q, want offline", got)
	}
}

// TestPermitsIPOnly: permitting only an IP range closes DNS names with an
// excluded empty dNSName, which crypto/x509 parses and honours.
func TestPermitsIPOnly(t *testing.T) {
	clock := newFakeClock()
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := Init(InitOptions{Dir: dir, Now: clock.Now, Logger: quietLogger(),
		Constraints: NameConstraints{PermittedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if why := c.Permits("dns", "a.test"); !strings.Contains(why, "permits no DNS names") {
		t.Fatalf("Permits(dns) = %q", why)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := NewSerial()
	der, err := c.Issue(Template{PublicKey: key.Public(), IPAddresses: []net.IP{net.ParseIP("10.1.1.1")}, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(c.Root())
	inters.AddCert(c.Intermediate())
	if _, err := mustParse(t, der).Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: clock.Now()}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
