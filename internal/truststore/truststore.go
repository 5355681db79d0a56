// Package truststore puts CA roots into the trust stores of a machine and
// takes them out again: the system store (Debian's update-ca-certificates
// or RHEL's update-ca-trust), the cacerts of each JDK (through keytool)
// and NSS databases of Chromium and Firefox (through certutil).
//
// Every entry certmint adds is named after the root's SHA-256 fingerprint
// (EntryName), so removing takes out exactly what certmint added and never
// an entry someone else made for the same root.
package truststore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/certmint/certmint/internal/certpem"
)

// Store is one trust store. Implementations are not safe for concurrent
// use; one command works on a store at a time.
type Store interface {
	// Name says which store this is, for messages:
	// "system /usr/local/share/ca-certificates".
	Name() string
	// Installed returns the roots certmint added to the store, keyed by
	// fingerprint. Entries made by anyone else are not returned.
	Installed(ctx context.Context) (map[string]*x509.Certificate, error)
	// Update adds the roots in add and removes the certmint entries whose
	// fingerprints are in remove, in one go (the system store rebuilds its
	// bundle once). An error wrapping os.ErrPermission means the process
	// lacks the privilege the store needs.
	Update(ctx context.Context, add []*x509.Certificate, remove []string) error
}

// entryPrefix starts every file name, alias and nickname certmint makes.
const entryPrefix = "certmint-"

// EntryName is the name of certmint's entry for the root with this
// fingerprint: a file name stem, a keytool alias, an NSS nickname.
func EntryName(fingerprint string) string { return entryPrefix + fingerprint }

// fingerprintOf returns the fingerprint an entry name carries, or "" when
// the name is not one certmint makes.
func fingerprintOf(name string) string {
	name = strings.ToLower(name)
	if !strings.HasPrefix(name, entryPrefix) {
		return ""
	}
	fp := strings.TrimPrefix(name, entryPrefix)
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
		return ""
	}
	return fp
}

// Fingerprint is the SHA-256 of a certificate's DER, lower-case hex: the
// form `certmint ca root` prints.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint accepts hex with or without colons or spaces and an
// optional "sha256:" prefix, and returns it in Fingerprint's form.
func ParseFingerprint(s string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	f = strings.TrimPrefix(f, "sha256:")
	f = strings.NewReplacer(":", "", " ", "", "-", "").Replace(f)
	if b, err := hex.DecodeString(f); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("root fingerprint %q must be a SHA-256 in hex (64 digits, colons allowed)", s)
	}
	return f, nil
}

// ParseCerts returns every CERTIFICATE block of a PEM text, in order.
func ParseCerts(data []byte) ([]*x509.Certificate, error) { return certpem.Parse(data) }

// ParseRoots is ParseCerts for roots to trust: it checks that each is a
// CA certificate, since a store must never be told to trust a leaf.
func ParseRoots(data []byte) ([]*x509.Certificate, error) {
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if !c.IsCA {
			return nil, fmt.Errorf("certificate %q is not a CA certificate", c.Subject.String())
		}
	}
	return certs, nil
}

// encodePEM is one certificate as PEM.
func encodePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// runner runs a tool with stdin and returns its combined output. The real
// one is execRunner; unit tests record the calls instead.
type runner func(ctx context.Context, env []string, stdin []byte, name string, args ...string) ([]byte, error)

// execRunner runs the command; env is added to the process environment.
// A failure carries the tool's last output line, which says why.
func execRunner(ctx context.Context, env []string, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", name, err, lastLine(out))
	}
	return out, nil
}

// lastLine is the last non-empty line of a tool's output.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// writable reports whether the process may write in path; a store checks
// it first so a missing privilege is one clear line, not a tool's error.
func writable(path string) error {
	if err := access(path); err != nil {
		return fmt.Errorf("cannot write %s (run as root or as its owner): %w", path, os.ErrPermission)
	}
	return nil
}
