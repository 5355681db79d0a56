package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreates(t *testing.T) {
	tests := []struct {
		name       string
		sub        string                         // Dir below the test's temp dir
		prepare    func(t *testing.T, dir string) // sets up Dir before Open
		passphrase []byte
		wantKeyPEM string
		wantDir700 bool // Open made (or re-made) the directory itself
	}{
		{name: "ok/missing-dir", sub: "ca", wantKeyPEM: pemTypePlainKey, wantDir700: true},
		{name: "ok/missing-parent", sub: "data/ca", wantKeyPEM: pemTypePlainKey, wantDir700: true},
		{
			name:       "ok/empty-dir",
			sub:        "ca",
			prepare:    func(t *testing.T, dir string) { mkdir(t, dir) },
			wantKeyPEM: pemTypePlainKey,
			wantDir700: true,
		},
		{
			name: "ok/dir-with-other-files",
			sub:  "ca",
			prepare: func(t *testing.T, dir string) {
				mkdir(t, dir)
				if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantKeyPEM: pemTypePlainKey,
		},
		{name: "ok/encrypted", sub: "ca", wantDir700: true, passphrase: []byte("correct horse"), wantKeyPEM: pemTypeEncryptedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tt.sub)
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			clock := newFakeClock()
			opts := Options{Dir: dir, Passphrase: tt.passphrase, Now: clock.Now, Logger: quietLogger()}
			c, err := Open(opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}

			if tt.wantDir700 {
				assertMode(t, dir, 0o700)
			}
			assertMode(t, filepath.Join(dir, RootKeyFile), 0o600)
			assertMode(t, filepath.Join(dir, IntermediateKeyFile), 0o600)
			for _, name := range []string{RootCertFile, IntermediateCertFile} {
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			// No staging directories are left behind.
			for _, d := range []string{dir, filepath.Dir(dir)} {
				entries, _ := os.ReadDir(d)
				for _, e := range entries {
					if strings.Contains(e.Name(), ".tmp-") {
						t.Errorf("left-over temp entry %s in %s", e.Name(), d)
					}
				}
			}
			for _, name := range []string{RootKeyFile, IntermediateKeyFile} {
				data, _ := os.ReadFile(filepath.Join(dir, name))
				block, _ := pem.Decode(data)
				if block == nil || block.Type != tt.wantKeyPEM {
					t.Fatalf("%s: PEM type %v, want %s", name, block, tt.wantKeyPEM)
				}
				if tt.wantKeyPEM == pemTypeEncryptedKey {
					for _, h := range []string{hdrKDF, hdrTime, hdrMemory, hdrThreads, hdrSalt, hdrNonce, hdrCipher} {
						if block.Headers[h] == "" {
							t.Errorf("%s: missing header %s", name, h)
						}
					}
				}
			}
			if got, want := c.KeysEncrypted(), len(tt.passphrase) > 0; got != want {
				t.Errorf("KeysEncrypted = %v, want %v", got, want)
			}
			assertCAShape(t, c)

			again, err := Open(opts)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if again.RootFingerprint() != c.RootFingerprint() {
				t.Errorf("reopen changed root fingerprint")
			}
			if !bytes.Equal(again.Intermediate().Raw, c.Intermediate().Raw) {
				t.Errorf("reopen changed intermediate")
			}
		})
	}
}

// assertCAShape checks the properties Open promises for root and intermediate.
func assertCAShape(t *testing.T, c *CA) {
	t.Helper()
	root, inter := c.Root(), c.Intermediate()
	if root.Subject.CommonName != "certmint Root CA" || inter.Subject.CommonName != "certmint Intermediate CA" {
		t.Errorf("names = %q, %q", root.Subject.CommonName, inter.Subject.CommonName)
	}
	for _, cert := range []struct {
		name  string
		years int
		pub   any
	}{{"root", 10, root.PublicKey}, {"intermediate", 5, inter.PublicKey}} {
		k, ok := cert.pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", cert.name, cert.pub)
		}
	}
	if got := root.NotAfter.Sub(root.NotBefore).Hours() / 24 / 365; got < 9.9 || got > 10.1 {
		t.Errorf("root lifetime %.2f years", got)
	}
	if got := inter.NotAfter.Sub(inter.NotBefore).Hours() / 24 / 365; got < 4.9 || got > 5.1 {
		t.Errorf("intermediate lifetime %.2f years", got)
	}
	if !root.IsCA || root.MaxPathLen != 1 {
		t.Errorf("root IsCA=%v MaxPathLen=%d", root.IsCA, root.MaxPathLen)
	}
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate IsCA=%v MaxPathLen=%d zero=%v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	if !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) {
		t.Errorf("intermediate AKI != root SKI")
	}
	if !matchKeyOK(c) {
		t.Errorf("Signer does not match the intermediate")
	}
	if fp := c.RootFingerprint(); len(fp) != 64 || strings.ToLower(fp) != fp || strings.Contains(fp, ":") {
		t.Errorf("RootFingerprint = %q", fp)
	}
}

func matchKeyOK(c *CA) bool { return matchKey(c.Intermediate(), c.Signer()) == nil }

func TestOpenFails(t *testing.T) {
	const pass, wrongPass = "s3cret-passphrase", "Tr0ub4dor&3"
	tests := []struct {
		name       string
		createPass string
		openPass   string
		tamper     func(t *testing.T, dir string)
		wantIs     error
		wantMsg    string // {dir} stands for the CA directory
	}{
		{name: "fail/wrong-passphrase", createPass: pass, openPass: wrongPass, wantIs: ErrBadPassphrase},
		{name: "fail/missing-passphrase", createPass: pass, wantIs: ErrBadPassphrase},
		{
			name: "fail/group-readable-root-key", wantIs: ErrInsecureKeyFile,
			tamper:  func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, RootKeyFile), 0o640) },
			wantMsg: "chmod 600 {dir}/" + RootKeyFile,
		},
		{
			name: "fail/world-readable-intermediate-key", createPass: pass, openPass: pass, wantIs: ErrInsecureKeyFile,
			tamper:  func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, IntermediateKeyFile), 0o604) },
			wantMsg: "chmod 600 {dir}/" + IntermediateKeyFile,
		},
		{
			name: "fail/incomplete-dir",
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, IntermediateCertFile)); err != nil {
					t.Fatal(err)
				}
			},
			wantMsg: "lacks [" + IntermediateCertFile + "]",
		},
		{
			name: "fail/tampered-kdf-header", createPass: pass, openPass: pass, wantIs: ErrBadPassphrase,
			tamper: func(t *testing.T, dir string) {
				path := filepath.Join(dir, IntermediateKeyFile)
				data, _ := os.ReadFile(path)
				block, _ := pem.Decode(data)
				block.Headers[hdrTime] = "2"
				if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			if _, err := Open(Options{Dir: dir, Passphrase: []byte(tt.createPass), Logger: quietLogger()}); err != nil {
				t.Fatalf("create: %v", err)
			}
			if tt.tamper != nil {
				tt.tamper(t, dir)
			}
			_, err := Open(Options{Dir: dir, Passphrase: []byte(tt.openPass), Logger: quietLogger()})
			if err == nil {
				t.Fatal("Open succeeded, want error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			wantMsg := strings.ReplaceAll(tt.wantMsg, "{dir}", dir)
			if !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, wantMsg)
			}
			for _, secret := range []string{pass, wrongPass} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error message leaks the passphrase: %q", err)
				}
			}
		})
	}
}

// Plaintext keys are accepted when a passphrase is given, so an operator can
// add a passphrase to an existing install; KeysEncrypted reports the truth.
func TestOpenPlaintextWithPassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	first, err := Open(Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Passphrase: []byte("later"), Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if c.KeysEncrypted() {
		t.Error("KeysEncrypted = true for plaintext keys")
	}
	if c.RootFingerprint() != first.RootFingerprint() {
		t.Error("root changed")
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode %04o, want %04o", path, got, want)
	}
}
