package integration

import (
	"crypto/x509"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// testPIN is distinctive so a leak into any output is found.
const testPIN = "pin-Q7x2kV9"

// softHSM initialises a token labelled "certmint" with user PIN testPIN in a
// temp dir and returns the environment that points SoftHSM2 at it.
func softHSM(t *testing.T) []string {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	_, terr := exec.LookPath("pkcs11-tool")
	if _, serr := os.Stat(softHSMModule); err != nil || serr != nil || terr != nil {
		if isCI() {
			t.Fatal("softhsm2 or opensc (pkcs11-tool) not installed")
		}
		t.Skip("softhsm2 or opensc not installed (apt-get install softhsm2 opensc)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	body := "directories.tokendir = " + filepath.Join(dir, "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SOFTHSM2_CONF=" + conf}
	cmd := exec.Command(util, "--init-token", "--free", "--label", "certmint", "--pin", testPIN, "--so-pin", "5678")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return env
}

func pinFile(t *testing.T, pin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSoftHSM: `ca init --kms` creates the CA keys inside a SoftHSM2 token
// and writes no key file; serve issues to lego through the token, the
// chain verifies, and a revocation's CRL, signed through the token,
// verifies against the intermediate. A wrong PIN, a missing module and a
// missing object are each one line and exit 2, and the PIN never shows.
func TestSoftHSM(t *testing.T) {
	env := softHSM(t)
	uriWith := func(pinPath, module string) string {
		return "pkcs11:token=certmint;object=certmint-intermediate?module-path=" + module + "&pin-source=file:" + pinPath
	}
	uri := func(pin, module string) string { return uriWith(pinFile(t, pin), module) }
	goodPIN := pinFile(t, testPIN)
	data := filepath.Join(t.TempDir(), "data")

	_, stderr, code := runCLI(t, env, "ca", "init", "--data", data, "--kms", uri("wrong-Z8p4m", softHSMModule))
	wantUsage(t, stderr, code, "the token refused the PIN")
	if strings.Contains(stderr, "wrong-Z8p4m") {
		t.Fatalf("the PIN is in the message: %s", stderr)
	}
	_, stderr, code = runCLI(t, env, "ca", "init", "--data", data, "--kms", uri(testPIN, "/usr/lib/no-such-pkcs11.so"))
	wantUsage(t, stderr, code, "the PKCS#11 module cannot be loaded")
	if _, err := os.Stat(data); err == nil {
		t.Fatal("a refused ca init created the data dir")
	}

	out, stderr, code := runCLI(t, env, "ca", "init", "--data", data, "--kms", uriWith(goodPIN, softHSMModule), "--intermediate-name", "HSM Intermediate")
	if code != 0 {
		t.Fatalf("ca init --kms: exit %d: %s", code, stderr)
	}
	// A second CA in the same token may not take the first one's keys.
	_, stderr, code = runCLI(t, env, "ca", "init", "--data", filepath.Join(t.TempDir(), "data"), "--kms", uriWith(goodPIN, softHSMModule))
	wantUsage(t, stderr, code, "already has \"certmint-root\"")
	if strings.Contains(out+stderr, testPIN) {
		t.Fatalf("the PIN is in the output: %s %s", out, stderr)
	}
	_ = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".key") {
			t.Errorf("key file %s written for a key in the token", p)
		}
		return nil
	})
	list := exec.Command("pkcs11-tool", "--module", softHSMModule, "--token-label", "certmint", "--login", "--pin", testPIN, "--list-objects", "--type", "privkey")
	list.Env = append(os.Environ(), env...)
	lout, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, lout)
	}
	for _, label := range []string{"certmint-root", "certmint-intermediate"} {
		if !strings.Contains(string(lout), "label:      "+label) {
			t.Fatalf("the token lacks %s:\n%s", label, lout)
		}
	}
	if strings.Count(string(lout), "never extractable") != 2 {
		t.Fatalf("token keys are extractable:\n%s", lout)
	}

	s := StartServer(t, ServerOptions{Data: data, Env: env, Args: []string{"--ca-poll", "300ms"}})
	client, res := obtainWithLegoClient(t, s, "hsm.svc.test")
	leaf := parseLeaf(t, res.Certificate)
	inter := chainIssuer(t, res.Certificate)
	if inter.Subject.CommonName != "HSM Intermediate" {
		t.Fatalf("issuer %q", inter.Subject.CommonName)
	}
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.Roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	if err := client.Certificate.RevokeWithReason(res.Certificate, nil); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rl, err := x509.ParseRevocationList(fetchCRL(t, leaf.CRLDistributionPoints[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(inter); err != nil {
			t.Fatalf("CRL signature does not verify against the intermediate: %v", err)
		}
		if crlLists(rl, leaf.SerialNumber) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the CRL does not list the revoked certificate after 5s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The console's CA page names the token as the key location, and a
	// rotation creates the new intermediate's key in the same token: its
	// URI (no PIN) is what the database records for every replica.
	c := signedInConsole(t, s)
	if page := mustBody(t, c, s.AdminURL()+"/ca"); !strings.Contains(page, "PKCS#11 token certmint") {
		t.Fatalf("/ca does not name the token as the key location:\n%s", page)
	}
	if o, e, code := runCLI(t, env, "ca", "rotate", "intermediate", "--data", data); code != 0 {
		t.Fatalf("ca rotate intermediate with a token key: exit %d: %s%s", code, o, e)
	}
	status, _ := runCLIStatus(t, env, data)
	if !strings.Contains(status, "PKCS#11 token certmint, object certmint-intermediate@") || strings.Contains(status, testPIN) {
		t.Fatalf("ca status after a rotation in the token:\n%s", status)
	}
	for i := 0; ; i++ {
		_, res := obtainWithLegoClient(t, s, "hsm2.svc.test")
		if !chainIssuer(t, res.Certificate).Equal(inter) {
			break
		}
		if i == 10 {
			t.Fatalf("still the old intermediate after the rotation in the token\n%s", s.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.Stop()
	if strings.Contains(s.Output(), testPIN) {
		t.Fatal("the PIN is in the server's output")
	}

	// serve reads the PIN anew at each start: a wrong one stops it.
	if err := os.WriteFile(goodPIN, []byte("0000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, env, s.Args()...)
	wantUsage(t, stderr, code, "the token refused the PIN")
	if err := os.WriteFile(goodPIN, []byte(testPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The intermediate's key gone from the token: serve says so.
	del := exec.Command("pkcs11-tool", "--module", softHSMModule, "--token-label", "certmint", "--login", "--pin", testPIN,
		"--delete-object", "--type", "privkey", "--label", "certmint-intermediate")
	del.Env = append(os.Environ(), env...)
	if dout, err := del.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool --delete-object: %v\n%s", err, dout)
	}
	_, stderr, code = runCLI(t, env, s.Args()...)
	wantUsage(t, stderr, code, "no such key in the token")
}

// runCLIStatus is `certmint ca status --data DIR` (text).
func runCLIStatus(t *testing.T, env []string, data string) (string, int) {
	t.Helper()
	out, errOut, code := runCLI(t, env, "ca", "status", "--data", data)
	if code != 0 {
		t.Fatalf("ca status: exit %d: %s", code, errOut)
	}
	return out, code
}

// TestRotateIntoToken: a CA with file keys moves its intermediate into a
// PKCS#11 token by `ca rotate intermediate --kms URI`; the running server
// signs through the token from then on, and the database holds the URI
// without the PIN.
func TestRotateIntoToken(t *testing.T) {
	env := softHSM(t)
	uri := "pkcs11:token=certmint;object=moved?module-path=" + softHSMModule + "&pin-source=file:" + pinFile(t, testPIN)
	s := StartServer(t, ServerOptions{Env: env, Args: []string{"--ca-poll", "300ms"}})
	_, resA := obtainWithLegoClient(t, s, "file.rotate.test")
	_, stderr, code := runCLI(t, env, "ca", "rotate", "intermediate", "--data", s.Data, "--kms", "pkcs11:token=certmint?pin-value=1234")
	wantUsage(t, stderr, code, "--kms")
	if o, e, code := runCLI(t, env, "ca", "rotate", "intermediate", "--data", s.Data, "--kms", uri); code != 0 {
		t.Fatalf("ca rotate intermediate --kms: exit %d: %s%s", code, o, e)
	}
	status, _ := runCLIStatus(t, env, s.Data)
	if !strings.Contains(status, "PKCS#11 token certmint, object moved@") || strings.Contains(status, testPIN) {
		t.Fatalf("ca status after moving the intermediate into the token:\n%s", status)
	}
	for i := 0; ; i++ {
		_, res := obtainWithLegoClient(t, s, "token.rotate.test")
		if !chainIssuer(t, res.Certificate).Equal(chainIssuer(t, resA.Certificate)) {
			verifyChain(t, res.Certificate, s.Roots, time.Now())
			break
		}
		if i == 10 {
			t.Fatalf("still the file intermediate after the rotation into the token\n%s", s.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if strings.Contains(s.Output(), testPIN) {
		t.Fatal("the PIN is in the server's output")
	}
}
