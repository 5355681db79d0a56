package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/truststore"
)

// writeTestRoot writes a fresh self-signed CA certificate to path and
// returns its fingerprint.
func writeTestRoot(t *testing.T, path, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return truststore.Fingerprint(c)
}

// TestAgentInstallTrust: `agent --once --install-trust` puts the server's
// bundle into the machine's stores (curl then trusts the server), and a
// later run removes a root it had installed that left the bundle, while a
// root installed by hand stays.
func TestAgentInstallTrust(t *testing.T) {
	needTrustTools(t)
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	home, nssDir := newNSSHome(t, dir)
	out := filepath.Join(dir, "out")
	fp := rootFingerprint(t, s)
	env := []string{"HOME=" + home}
	paths, before := guardTrustStores(t)

	agentArgs := []string{"agent", "--once", "--install-trust", "--server", s.DirectoryURL(),
		"--root-fingerprint", fp, "--name", "trust-agent.test", "--out", out,
		"--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort)}
	if _, stderr, code := runCLI(t, env, agentArgs...); code != 0 {
		t.Fatalf("agent --install-trust: exit %d: %s\n%s", code, stderr, s.Output())
	}
	p := probes{t: t, url: s.DirectoryURL(), nssDir: nssDir, nick: truststore.EntryName(fp)}
	if out, err := p.run("curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", p.url); err != nil || out != "200" {
		t.Errorf("curl after agent --install-trust: %v %s", err, out)
	}
	nss := func() string { o, _ := p.run("certutil", "-L", "-d", "sql:"+nssDir); return o }
	if !strings.Contains(nss(), truststore.EntryName(fp)) {
		t.Errorf("the agent did not install the root in NSS:\n%s", nss())
	}
	stateFile := filepath.Join(out, "trusted-roots.txt")
	if b, _ := os.ReadFile(stateFile); strings.TrimSpace(string(b)) != fp {
		t.Errorf("trusted-roots.txt = %q, want the bundle's root", b)
	}

	// An old root the agent had installed (say, before a rotation), and
	// one installed by hand; both in the NSS store only, to keep it quick.
	oldFP := writeTestRoot(t, filepath.Join(dir, "old.pem"), "old root")
	handFP := writeTestRoot(t, filepath.Join(dir, "hand.pem"), "hand root")
	for _, f := range []string{"old.pem", "hand.pem"} {
		if _, stderr, code := runCLI(t, env, "trust", "install", "--nss", "--root", filepath.Join(dir, f)); code != 0 {
			t.Fatalf("trust install %s: %s", f, stderr)
		}
	}
	if err := os.WriteFile(stateFile, []byte(fp+"\n"+oldFP+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, env, agentArgs...); code != 0 {
		t.Fatalf("second agent run: exit %d: %s", code, stderr)
	}
	list := nss()
	if strings.Contains(list, truststore.EntryName(oldFP)) || !strings.Contains(list, truststore.EntryName(handFP)) ||
		!strings.Contains(list, truststore.EntryName(fp)) {
		t.Errorf("after the old root left the bundle, NSS holds:\n%s", list)
	}
	if b, _ := os.ReadFile(stateFile); strings.TrimSpace(string(b)) != fp {
		t.Errorf("trusted-roots.txt = %q, want only the bundle's root", b)
	}

	if _, stderr, code := runCLI(t, env, "trust", "uninstall"); code != 0 {
		t.Fatalf("trust uninstall: exit %d: %s", code, stderr)
	}
	if list := nss(); strings.Contains(list, "certmint-") {
		t.Errorf("uninstall without selectors left certmint roots:\n%s", list)
	}
	sameStores(t, before, snapshotTrees(t, paths...), "agent --install-trust + uninstall")
}
