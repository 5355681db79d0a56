package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func TestFallbackRenewAt(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * time.Hour)
	if got := fallbackRenewAt(nb, na, 0); !got.Equal(nb.Add(60 * time.Hour)) {
		t.Errorf("no jitter: %s, want 2/3 of the lifetime", got)
	}
	got := fallbackRenewAt(nb, na, 0.999)
	if !got.Before(nb.Add(60*time.Hour)) || got.Before(nb.Add(60*time.Hour-90*time.Hour/20)) {
		t.Errorf("max jitter: %s, want within 1/20 of the lifetime before 2/3", got)
	}
}

func TestBackoff(t *testing.T) {
	const minD, maxD = 10 * time.Second, time.Hour
	far := 1000 * time.Hour
	tests := []struct {
		name      string
		n         int
		remaining time.Duration
		want      time.Duration
	}{
		{"first", 1, far, 10 * time.Second},
		{"doubles", 4, far, 80 * time.Second},
		{"capped", 30, far, time.Hour},
		{"final-push", 30, 30 * time.Minute, 10 * time.Minute},
		{"floor", 3, time.Second, time.Second},
		{"expired-keeps-backoff", 2, -time.Minute, 20 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := backoff(tc.n, minD, maxD, tc.remaining, 0.5); got != tc.want {
				t.Errorf("backoff = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	good := func() Config {
		return Config{DirectoryURL: "https://ca.test/acme/directory", RootFingerprint: strings.Repeat("a", 64),
			Names: []string{"Svc.Test"}, HTTP01Listen: ":80", StateDir: t.TempDir()}
	}
	c := good()
	if err := c.normalize(); err != nil || c.Names[0] != "svc.test" || c.KeyType != KeyEC256 {
		t.Fatalf("good config: %v %+v", err, c)
	}
	for name, mutate := range map[string]func(*Config){
		"fail/http-directory": func(c *Config) { c.DirectoryURL = "http://ca.test/dir" },
		"fail/no-trust":       func(c *Config) { c.RootFingerprint = "" },
		"fail/bad-pin":        func(c *Config) { c.RootFingerprint = "abc" },
		"fail/no-names":       func(c *Config) { c.Names = nil },
		"fail/two-modes":      func(c *Config) { c.DNS01Hook = "hook" },
		"fail/no-mode":        func(c *Config) { c.HTTP01Listen = "" },
		"fail/key-type":       func(c *Config) { c.KeyType = "dsa" },
		"fail/half-eab":       func(c *Config) { c.EABKeyID = "kid" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good()
			mutate(&c)
			if err := c.normalize(); !errors.Is(err, ErrConfig) {
				t.Errorf("want ErrConfig, got %v", err)
			}
		})
	}
}

func selfSigned(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// TestFetchPinnedRoot serves a root over TLS the client cannot verify, as
// certmint does, and checks that only the pin decides.
func TestFetchPinnedRoot(t *testing.T) {
	root, _ := selfSigned(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/roots/bundle.pem" {
			http.NotFound(w, r)
			return
		}
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	}))
	defer srv.Close()
	dir := srv.URL + "/acme/directory"
	pin := strings.ToUpper(Fingerprint(root))
	pin = pin[:2] + ":" + pin[2:] // colons and upper case are fine
	cfg := Config{DirectoryURL: dir, RootFingerprint: pin, StateDir: t.TempDir()}
	got, err := loadRoot(&cfg)
	if err != nil || !got.Equal(root) {
		t.Fatalf("pinned fetch: %v", err)
	}
	cfg.RootFingerprint = strings.Repeat("0", 64)
	if _, err := loadRoot(&cfg); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("wrong pin: %v", err)
	}
}

func TestDNSHookContract(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2 $3 $CERTMINT_DNS01_DOMAIN\" >> "+log+"\n"), 0o755)
	h := &DNSHook{Command: script}
	if err := h.Present("svc.test", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := h.CleanUp("svc.test", "tok", "tok.thumb"); err != nil {
		t.Fatal(err)
	}
	_, value := DNS01Record("svc.test", "tok.thumb")
	data, _ := os.ReadFile(log)
	want := "present _acme-challenge.svc.test. " + value + " svc.test\ncleanup _acme-challenge.svc.test. " + value + " svc.test\n"
	if string(data) != want {
		t.Fatalf("hook calls:\n%s\nwant:\n%s", data, want)
	}
	failing := &DNSHook{Command: "echo no such zone >&2; exit 3"}
	if err := failing.Present("svc.test", "t", "k"); err == nil || !strings.Contains(err.Error(), "no such zone") {
		t.Fatalf("failing hook: %v", err)
	}
}

func TestWriteJavaStores(t *testing.T) {
	root, rootKey := selfSigned(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"svc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, root, &k.PublicKey, rootKey)
	leaf, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	cert := &tls.Certificate{Certificate: [][]byte{der, root.Raw}, PrivateKey: k, Leaf: leaf}
	for alias, want := range map[string]string{"": "svc.test", "my-service": "my-service"} {
		if err := WriteJavaStores(dir, cert, []*x509.Certificate{root}, "pw", alias); err != nil {
			t.Fatal(err)
		}
		ks, _ := os.ReadFile(filepath.Join(dir, KeystoreFile))
		// DecodeChain checks the MAC, which setKeyAlias recomputed.
		gotKey, gotLeaf, chain, err := pkcs12.DecodeChain(ks, "pw")
		if err != nil || !gotLeaf.Equal(leaf) || len(chain) != 1 || !gotKey.(*ecdsa.PrivateKey).Equal(k) {
			t.Fatalf("keystore: %v", err)
		}
		if _, _, _, err := pkcs12.DecodeChain(ks, "pw2"); err == nil {
			t.Fatal("keystore opens with a wrong password")
		}
		blocks, err := pkcs12.ToPEM(ks, "pw")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, b := range blocks {
			if b.Type == "PRIVATE KEY" {
				got = b.Headers["friendlyName"]
			}
		}
		if got != want {
			t.Errorf("alias %q: the key's friendlyName is %q, want %q", alias, got, want)
		}
	}
	ts, _ := os.ReadFile(filepath.Join(dir, TruststoreFile))
	certs, err := pkcs12.DecodeTrustStore(ts, "pw")
	if err != nil || len(certs) != 1 || !certs[0].Equal(root) {
		t.Fatalf("truststore: %v", err)
	}
	if _, err := pkcs12.DecodeTrustStore(ts, "wrong"); err == nil {
		t.Fatal("truststore opens with a wrong password")
	}
}
