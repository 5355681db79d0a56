package agent

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/go-acme/lego/v4/registration"
)

// Files of the state directory.
const (
	fileAccountKey = "account.key"
	fileAccount    = "account.json"
	fileKey        = "key.pem"
	fileCert       = "cert.pem"
	fileChain      = "chain.pem"
	fileFullchain  = "fullchain.pem"
	fileRoot       = "root.pem"
)

// accountFile is account.json: the registration and the directory it
// belongs to, so pointing the agent at another server re-registers.
type accountFile struct {
	Directory    string                 `json:"directory"`
	Registration *registration.Resource `json:"registration"`
}

// user is the lego view of the ACME account.
type user struct {
	email string
	key   crypto.PrivateKey
	reg   *registration.Resource
}

func (u *user) GetEmail() string                        { return u.email }
func (u *user) GetRegistration() *registration.Resource { return u.reg }
func (u *user) GetPrivateKey() crypto.PrivateKey        { return u.key }

// loadAccount reads the account key (making one if there is none) and the
// registration if it was made against the same directory.
func loadAccount(dir, directory, email string) (*user, error) {
	u := &user{email: email}
	keyPath := filepath.Join(dir, fileAccountKey)
	data, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		u.key, err = parsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("account key %s: %w", keyPath, err)
		}
	case errors.Is(err, os.ErrNotExist):
		k, err := newKey(KeyEC256)
		if err != nil {
			return nil, err
		}
		pemKey, err := marshalPrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(keyPath, pemKey, 0o600); err != nil {
			return nil, err
		}
		u.key = k
	default:
		return nil, fmt.Errorf("read account key: %w", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, fileAccount)); err == nil {
		var af accountFile
		if json.Unmarshal(data, &af) == nil && af.Directory == directory && af.Registration != nil {
			u.reg = af.Registration
		}
	}
	return u, nil
}

func saveAccount(dir, directory string, reg *registration.Resource) error {
	data, err := json.MarshalIndent(accountFile{Directory: directory, Registration: reg}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, fileAccount), data, 0o600)
}

func marshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	var k any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("unsupported key type")
	}
	return s, nil
}

// loadCert returns the stored certificate if it is complete, matches its
// key, covers exactly names and chains to root; nil and the reason
// otherwise. Expiry is the caller's business.
func loadCert(dir string, names []string, root *x509.Certificate) (*tls.Certificate, error) {
	full, err := os.ReadFile(filepath.Join(dir, fileFullchain))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, fileKey))
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(full, key)
	if err != nil {
		return nil, fmt.Errorf("stored certificate and key: %w", err)
	}
	if err := checkCert(&cert, names, root); err != nil {
		return nil, err
	}
	return &cert, nil
}

// checkCert verifies that cert covers exactly names and chains to root.
func checkCert(cert *tls.Certificate, names []string, root *x509.Certificate) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
		cert.Leaf = leaf
	}
	if got, want := certNames(leaf), sortedNames(names); !slices.Equal(got, want) {
		return fmt.Errorf("certificate names %v are not the configured %v", got, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// Expiry is judged by the scheduler; verify at a time inside validity.
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		CurrentTime: leaf.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("certificate does not chain to the trusted root: %w", err)
	}
	return nil
}

func certNames(leaf *x509.Certificate) []string {
	var out []string
	for _, n := range leaf.DNSNames {
		out = append(out, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return sortedNames(out)
}

func sortedNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// saveCert stores a new certificate: key first, then the certificates;
// loadCert rejects a crash-torn pair because the key would not match.
func saveCert(dir string, key crypto.Signer, chain []*x509.Certificate) error {
	pemKey, err := marshalPrivateKey(key)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{fileKey, pemKey, 0o600},
		{fileCert, encodeCerts(chain[0]), 0o644},
		{fileChain, encodeCerts(chain[1:]...), 0o644},
		{fileFullchain, encodeCerts(chain...), 0o644},
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}
