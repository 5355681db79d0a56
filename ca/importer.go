package ca

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/certmint/certmint/internal/atomicfile"
)

// ImportIntermediate activates the pending intermediate of the CA in dir
// with the certificate in file, signed by the offline root. file may hold
// the root after the intermediate, as many CAs return a chain. Every check
// comes first; the certificate is then written, and ca.json is replaced
// atomically as the last step, so a failure leaves the directory as it
// was.
func ImportIntermediate(dir, file string, now time.Time) (*Issuer, error) {
	m, err := readManifest(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, badInput("%s holds no CA made by `certmint ca init --offline-root`", dir)
		}
		return nil, err
	}
	rec := m.find(RoleIntermediate)
	if rec.State != StatePending {
		return nil, badInput("no intermediate is pending in %s: its intermediate is already %s", dir, rec.State)
	}
	csr, err := os.ReadFile(filepath.Join(dir, rec.CSR))
	if err != nil {
		return nil, err
	}
	want, constrained, err := parseCSR(csr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rec.CSR, err)
	}
	root, _, err := readCert(filepath.Join(dir, m.find(RoleRoot).Cert))
	if err != nil {
		return nil, err
	}
	certs, err := readCertFile(file)
	if err != nil {
		return nil, err
	}
	inter := certs[0]
	for _, extra := range certs[1:] {
		if !bytes.Equal(extra.Raw, root.Raw) {
			return nil, badInput("%s holds a certificate (%q) other than the intermediate and its root; certmint serves intermediates signed by the root directly", file, extra.Subject.CommonName)
		}
	}
	if pub, ok := want.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(inter.PublicKey) {
		return nil, badInput("%s (%q) is for a different key than the CSR %s; sign that CSR", file, inter.Subject.CommonName, filepath.Join(dir, rec.CSR))
	}
	if err := checkIntermediate(inter, file, root, now); err != nil {
		return nil, err
	}
	// A root that signs without copying the requested extensions would
	// hand out an unconstrained intermediate; that is never what the
	// operator asked for.
	if constrained && len(chainConstraints(inter)) == 0 {
		return nil, badInput("%s (%q) lacks the name constraints the CSR asked for; sign the CSR so its extensions are copied (openssl: -copy_extensions copyall)", file, inter.Subject.CommonName)
	}

	rec.State, rec.Cert = StateActive, IntermediateCertFile
	path := filepath.Join(dir, IntermediateCertFile)
	if err := atomicfile.Write(path, certPEM(inter.Raw), 0o644); err != nil {
		return nil, fmt.Errorf("ca: write %s: %w", path, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ManifestFile), m.encode(), 0o644); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("ca: write %s: %w", ManifestFile, err)
	}
	return &Issuer{Role: RoleIntermediate, State: StateActive, Cert: inter, KeyLocation: keyLocation(rec.Key), pem: certPEM(inter.Raw)}, nil
}
