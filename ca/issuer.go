package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certmint/certmint/ca/kms"
)

// A CA is a set of issuers: one or more roots and the intermediates under
// them, each with a state. Today a CA has one root and one intermediate;
// the layout leaves room for rotation (several of each, with states
// retiring and retired) without changing what an issuer is.

// Role is an issuer's place in the chain.
type Role string

// Roles.
const (
	RoleRoot         Role = "root"
	RoleIntermediate Role = "intermediate"
)

// State is an issuer's place in its life.
type State string

// States. Pending is an intermediate whose CSR is out for signing by an
// offline root, or one waiting for the end of a root rotation's overlap;
// an active intermediate signs new certificates (one at a time) and an
// active root is in the bundle clients trust; a retiring intermediate
// signs only CRLs for what it issued; retired issuers do nothing.
const (
	StatePending  State = "pending"
	StateActive   State = "active"
	StateRetiring State = "retiring"
	StateRetired  State = "retired"
)

// ManifestFile lists the issuers of a CA made by `certmint ca init`. A
// directory without it is the layout `serve` bootstraps: the four files
// root.pem, root.key, intermediate.pem and intermediate.key.
const ManifestFile = "ca.json"

// IntermediateCSRFile is the pending intermediate's CSR, kept in the CA
// directory so it can be fetched again.
const IntermediateCSRFile = "intermediate.csr"

// ErrPending means the CA's intermediate waits for its certificate from an
// offline root; `certmint ca import-intermediate` completes it.
var ErrPending = errors.New("ca: the intermediate waits for its certificate from the offline root")

// ErrExists means a CA directory already holds a CA.
var ErrExists = errors.New("ca: the directory already holds a CA")

// Issuer is one CA certificate of the CA with where its key is.
type Issuer struct {
	// ID is the lowercase hex of the certificate's subject key identifier
	// (of the CSR's key while pending): the key of the issuer's row, of
	// its CRL and of the certificates it signed.
	ID       string
	ParentID string // the root above an intermediate
	Role     Role
	State    State
	// KeyRef is where the key is, as recorded: "db" (the key, encrypted
	// under CERTMINT_CA_PASSPHRASE when set, is in the issuers table), a
	// file name in the CA directory, a pkcs11: URI without PIN, or empty
	// when the key is offline.
	KeyRef string
	// CRLName is the last path element of the issuer's CRL URL without
	// ".crl": "intermediate" for the first intermediate (the URL already
	// in its certificates), the ID for later ones.
	CRLName string
	// ActivateAt is when a pending issuer with a certificate takes over
	// issuance (the end of a root rotation's overlap).
	ActivateAt *time.Time
	// CSR is a pending intermediate's request (PEM), for the offline root.
	CSR []byte
	// Cert is nil while the issuer is pending.
	Cert *x509.Certificate
	// KeyLocation says where the private key is, for operators: a file
	// name, "PKCS#11 token X, object Y", or "offline".
	KeyLocation string

	pem    []byte
	signer crypto.Signer // nil when the key is offline or not loaded
}

// issuerRecord is an issuer as ca.json stores it. Key is a file name in
// the CA directory, a pkcs11: URI (RFC 7512, without PIN), or empty when
// the key is kept elsewhere (an offline root).
type issuerRecord struct {
	Role  Role   `json:"role"`
	State State  `json:"state"`
	Cert  string `json:"cert,omitempty"`
	CSR   string `json:"csr,omitempty"`
	Key   string `json:"key,omitempty"`
}

type manifest struct {
	Version int            `json:"version"`
	Issuers []issuerRecord `json:"issuers"`
}

// find returns the first record with role r.
func (m *manifest) find(r Role) *issuerRecord {
	for i := range m.Issuers {
		if m.Issuers[i].Role == r {
			return &m.Issuers[i]
		}
	}
	return nil
}

func readManifest(dir string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%s: version %d is not known to this certmint; upgrade it", ManifestFile, m.Version)
	}
	if m.find(RoleRoot) == nil || m.find(RoleIntermediate) == nil {
		return nil, fmt.Errorf("%s lists no root or no intermediate", ManifestFile)
	}
	return &m, nil
}

// encode is ca.json's text; URIs keep their "&" readable.
func (m *manifest) encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m)
	return b.Bytes()
}

// keyLocation describes a manifest key reference for operators.
func keyLocation(key string) string {
	if key == "" {
		return "offline"
	}
	if strings.HasPrefix(key, "pkcs11:") {
		if u, err := kms.ParseURI(key); err == nil {
			return u.Location()
		}
	}
	return "file " + key
}

// Holds reports whether dir holds any file of a CA, complete or not.
func Holds(dir string) (bool, error) { return holdsCA(dir) }

// holdsCA reports whether dir holds any file of a CA, complete or not.
func holdsCA(dir string) (bool, error) {
	for _, name := range []string{ManifestFile, RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile, IntermediateCSRFile} {
		_, err := os.Lstat(filepath.Join(dir, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// Issuers returns the CA's issuers, roots first. Callers must not modify
// them.
func (c *CA) Issuers() []*Issuer { return c.snap().issuers }

// Close releases the PKCS#11 tokens the CA signs through, if any.
func (c *CA) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.keys != nil {
		for _, t := range c.keys.tokens {
			errs = append(errs, t.Close())
		}
		c.keys.tokens, c.keys.byName = nil, nil
	}
	return errors.Join(errs...)
}
