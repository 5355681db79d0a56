package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
)

// needOpenSSL returns the openssl binary, or skips (fails under CI).
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if isCI() {
			t.Fatal("openssl not installed")
		}
		t.Skip("openssl not installed (apt-get install openssl)")
	}
	return p
}

// opensslIn runs openssl in dir and fails the test on error.
func opensslIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// opensslRoot makes a P-256 root NAME.pem / NAME.key in dir with the
// given basicConstraints value.
func opensslRoot(t *testing.T, dir, name, bc string) (cert, key string) {
	t.Helper()
	opensslIn(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".pem", "-days", "3650", "-subj", "/CN="+name,
		"-addext", "basicConstraints=critical,"+bc, "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
}

// caExtFile writes an openssl extension file for an intermediate CA.
func caExtFile(t *testing.T, dir, bc string) string {
	t.Helper()
	p := filepath.Join(dir, "ext-"+strings.NewReplacer(":", "", ",", "").Replace(bc)+".cnf")
	body := "basicConstraints=critical," + bc + "\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantUsage checks a CLI refusal: exit 2 and one line naming the cause.
func wantUsage(t testing.TB, stderr string, code int, want string) {
	t.Helper()
	if code != 2 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit 2 and one line containing %q", code, stderr, want)
	}
}

// opensslVerify checks a PEM chain (leaf, intermediates) against root
// with the real openssl.
func opensslVerify(t *testing.T, root string, chain []byte) {
	t.Helper()
	dir := t.TempDir()
	block, rest := pem.Decode(chain)
	leaf, untrusted := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "untrusted.pem")
	if err := os.WriteFile(leaf, pem.EncodeToMemory(block), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(untrusted, rest, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", root, "-untrusted", untrusted, leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

// signWithGo issues a CA certificate for the CSR's key from an
// openssl-made root, with a validity openssl 3.0's x509 cannot set.
func signWithGo(t *testing.T, csrPath, rootCert, rootKey string, notBefore, notAfter time.Time, out string) {
	t.Helper()
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		return b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(read(csrPath))
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(read(rootCert))
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(read(rootKey))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dated"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, key.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineRoot: openssl makes a root whose key certmint never sees;
// `ca init --offline-root --permitted-dns svc.test` writes a CSR, openssl
// signs it, `ca import-intermediate` activates it, and lego gets a.svc.test
// with a chain openssl verifies to the openssl root, while b.other.test is
// refused up front. Every bad input is refused with one line and exit 2
// and leaves the data directory byte-for-byte as it was.
func TestOfflineRoot(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	root, rootKey := opensslRoot(t, dir, "corp-root", "CA:TRUE")
	data := filepath.Join(dir, "data")
	csr := filepath.Join(dir, "int.csr")
	_, stderr, code := runCLI(t, nil, "ca", "init", "--data", data, "--offline-root", root, "--permitted-dns", "svc.test", "--csr-out", csr)
	if code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"ca/intermediate.key", "ca/intermediate.csr", "ca/root.pem", "ca/ca.json"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Fatalf("after ca init: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "ca", "root.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an offline root's key must not be in the data dir: %v", err)
	}

	// serve refuses while the CSR waits, and creates nothing.
	before := snapshotTrees(t, data)
	_, stderr, code = runCLI(t, nil, "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", "")
	wantUsage(t, stderr, code, "certmint ca import-intermediate --data "+data)
	if d := before.diff(snapshotTrees(t, data)); len(d) > 0 {
		t.Fatalf("serve changed the data dir while refusing: %v", d)
	}

	// The bad inputs, each made by openssl (or by Go where openssl 3.0
	// cannot set the dates).
	other, otherKey := opensslRoot(t, dir, "other-root", "CA:TRUE")
	pathlen0, _ := opensslRoot(t, dir, "pathlen0-root", "CA:TRUE,pathlen:0")
	opensslIn(t, dir, "x509", "-req", "-in", csr, "-CA", root, "-CAkey", rootKey, "-days", "30",
		"-extfile", caExtFile(t, dir, "CA:FALSE"), "-out", "not-ca.pem")
	opensslIn(t, dir, "x509", "-req", "-in", csr, "-CA", root, "-CAkey", rootKey, "-days", "30",
		"-extfile", caExtFile(t, dir, "CA:TRUE,pathlen:0"), "-out", "unconstrained.pem")
	opensslIn(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "stray.key", "-out", "stray.csr", "-subj", "/CN=stray")
	opensslIn(t, dir, "x509", "-req", "-in", "stray.csr", "-CA", root, "-CAkey", rootKey, "-days", "30",
		"-extfile", caExtFile(t, dir, "CA:TRUE,pathlen:0"), "-out", "other-key.pem")
	opensslIn(t, dir, "x509", "-req", "-in", csr, "-CA", other, "-CAkey", otherKey, "-days", "30",
		"-copy_extensions", "copyall", "-out", "wrong-root.pem")
	now := time.Now()
	signWithGo(t, csr, root, rootKey, now.Add(-60*24*time.Hour), now.Add(-24*time.Hour), filepath.Join(dir, "expired.pem"))
	signWithGo(t, csr, root, rootKey, now.Add(10*24*time.Hour), now.Add(60*24*time.Hour), filepath.Join(dir, "future.pem"))
	fresh := filepath.Join(dir, "fresh")
	in := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name  string
		args  []string
		data  string // the directory that must stay as it was
		want  string
		extra string // a file that must not appear
	}{
		{"import/not-a-ca", []string{"ca", "import-intermediate", "--data", data, in("not-ca.pem")}, data, "is not a CA certificate", ""},
		{"import/constraints-dropped", []string{"ca", "import-intermediate", "--data", data, in("unconstrained.pem")}, data, "lacks the name constraints the CSR asked for", ""},
		{"import/other-key", []string{"ca", "import-intermediate", "--data", data, in("other-key.pem")}, data, "different key than the CSR", ""},
		{"import/chain", []string{"ca", "import-intermediate", "--data", data, in("wrong-root.pem")}, data, "the chain does not verify", ""},
		{"import/expired", []string{"ca", "import-intermediate", "--data", data, in("expired.pem")}, data, "has expired", ""},
		{"import/not-yet-valid", []string{"ca", "import-intermediate", "--data", data, in("future.pem")}, data, "is not valid yet", ""},
		{"init/pathlen", []string{"ca", "init", "--data", fresh, "--offline-root", pathlen0, "--csr-out", in("p.csr")}, fresh, "forbids an intermediate", in("p.csr")},
		{"init/key-mismatch", []string{"ca", "init", "--data", fresh, "--root-cert", root, "--root-key", otherKey}, fresh, "does not match the certificate", ""},
		{"init/intermediate-key-mismatch", []string{"ca", "init", "--data", fresh, "--offline-root", root, "--intermediate-cert", in("other-key.pem"), "--intermediate-key", rootKey}, fresh, "does not match the certificate", ""},
		{"init/intermediate-chain", []string{"ca", "init", "--data", fresh, "--offline-root", root, "--intermediate-cert", in("wrong-root.pem"), "--intermediate-key", filepath.Join(data, "ca", "intermediate.key")}, fresh, "the chain does not verify", ""},
		{"init/root-not-ca", []string{"ca", "init", "--data", fresh, "--offline-root", in("not-ca.pem"), "--csr-out", in("n.csr")}, fresh, "is not a CA certificate", in("n.csr")},
		{"init/has-ca", []string{"ca", "init", "--data", data, "--offline-root", root, "--csr-out", in("again.csr")}, data, "already holds a CA", in("again.csr")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshotTrees(t, tc.data)
			_, stderr, code := runCLI(t, nil, tc.args...)
			wantUsage(t, stderr, code, tc.want)
			if d := before.diff(snapshotTrees(t, tc.data)); len(d) > 0 {
				t.Fatalf("%s changed: %v", tc.data, d)
			}
			if tc.extra != "" {
				if _, err := os.Stat(tc.extra); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s was written", tc.extra)
				}
			}
		})
	}

	// The good one: openssl copies the requested extensions. 30 days, so
	// the 90-day default profile must be cut to the intermediate's end.
	opensslIn(t, dir, "x509", "-req", "-in", csr, "-CA", root, "-CAkey", rootKey, "-days", "30",
		"-copy_extensions", "copyall", "-out", "int.pem")
	if _, stderr, code := runCLI(t, nil, "ca", "import-intermediate", "--data", data, in("int.pem")); code != 0 {
		t.Fatalf("import-intermediate: exit %d: %s", code, stderr)
	}
	_, stderr, code = runCLI(t, nil, "ca", "import-intermediate", "--data", data, in("int.pem"))
	wantUsage(t, stderr, code, "no intermediate is pending")

	s := StartServer(t, ServerOptions{Data: data, Hostnames: "acme.svc.test", TLSName: "acme.svc.test"})
	leaf, res := obtainWithLego(t, s, "a.svc.test")
	opensslVerify(t, root, res.Certificate)
	inter := chainIssuer(t, res.Certificate)
	if !inter.PermittedDNSDomainsCritical || len(inter.PermittedDNSDomains) != 1 || inter.PermittedDNSDomains[0] != "svc.test" {
		t.Fatalf("intermediate name constraints: critical=%v permitted=%v", inter.PermittedDNSDomainsCritical, inter.PermittedDNSDomains)
	}
	if leaf.NotAfter.After(inter.NotAfter) {
		t.Fatalf("leaf notAfter %s is after its issuer's %s", leaf.NotAfter, inter.NotAfter)
	}
	if !leaf.NotAfter.Equal(inter.NotAfter) {
		t.Fatalf("leaf notAfter %s: want it cut to the intermediate's %s (90-day profile, 30-day intermediate)", leaf.NotAfter, inter.NotAfter)
	}

	client, _ := newLegoClient(t, s, "ec")
	_, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"b.other.test"}, Bundle: true})
	wantProblem(t, err, "rejectedIdentifier", 400)
	if !strings.Contains(err.Error(), "svc.test") {
		t.Fatalf("the refusal does not say what is permitted: %v", err)
	}
}

// TestExistingRootAndIntermediate: a root and key made by openssl, and an
// openssl intermediate with its key, are each taken by `ca init` and used
// to issue; openssl verifies the chains to the openssl root.
func TestExistingRootAndIntermediate(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	root, rootKey := opensslRoot(t, dir, "corp-root", "CA:TRUE")
	opensslIn(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Corp Issuing CA")
	opensslIn(t, dir, "x509", "-req", "-in", "int.csr", "-CA", root, "-CAkey", rootKey, "-days", "365",
		"-extfile", caExtFile(t, dir, "CA:TRUE,pathlen:0"), "-out", "int.pem")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"root-and-key", []string{"--root-cert", root, "--root-key", rootKey}},
		{"intermediate-and-key", []string{"--root-cert", root, "--intermediate-cert", filepath.Join(dir, "int.pem"), "--intermediate-key", filepath.Join(dir, "int.key")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if _, stderr, code := runCLI(t, nil, append([]string{"ca", "init", "--data", data}, tc.args...)...); code != 0 {
				t.Fatalf("ca init: exit %d: %s", code, stderr)
			}
			s := StartServer(t, ServerOptions{Data: data})
			_, res := obtainWithLego(t, s, "svc.example.test")
			opensslVerify(t, root, res.Certificate)
			issuer := chainIssuer(t, res.Certificate)
			if tc.name == "intermediate-and-key" && issuer.Subject.CommonName != "Corp Issuing CA" {
				t.Fatalf("issued by %q, want the imported intermediate", issuer.Subject.CommonName)
			}
		})
	}
}
