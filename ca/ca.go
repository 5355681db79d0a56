// Package ca is certmint's private certificate authority: it bootstraps a
// root and an intermediate CA on first start, or takes one prepared by
// Init (an existing root or intermediate, an offline root that signs a
// CSR, name constraints, keys in a PKCS#11 token); it keeps file keys on
// disk (optionally encrypted), signs leaf certificates and CRLs with the
// intermediate through a crypto.Signer, refuses names outside the chain's
// name constraints, and maintains the server's own TLS certificate. It
// knows nothing of HTTP or of storage.
package ca

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names inside Options.Dir.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root.key"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate.key"
)

var (
	// ErrBadPassphrase means a key file is encrypted and the passphrase is
	// missing or wrong.
	ErrBadPassphrase = errors.New("ca: bad or missing passphrase for encrypted key")
	// ErrInsecureKeyFile means a key file is readable or writable by group or
	// others, so the key must be considered exposed.
	ErrInsecureKeyFile = errors.New("ca: key file is accessible by group or others")
)

// Options configure Open.
type Options struct {
	// Dir holds the CA files, e.g. DATA/ca. It is created with mode 0700 if
	// missing.
	Dir string
	// Passphrase, when non-empty, encrypts newly created private keys at
	// rest and decrypts existing ones. Plaintext key files are still
	// accepted when a passphrase is given (an operator may add a passphrase
	// to an existing install); CA.KeysEncrypted tells the caller so it can
	// warn.
	Passphrase []byte
	// RootName is the root's common name; default "certmint Root CA".
	RootName string
	// IntermediateName is the intermediate's common name; default
	// "certmint Intermediate CA".
	IntermediateName string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives events such as CA creation and server certificate
	// renewal; default slog.Default().
	Logger *slog.Logger
}

// CA is a loaded certificate authority. It is safe for concurrent use.
//
// The fields below issuers describe the active root and intermediate, the
// pair that signs today; rotation will swap them as one.
type CA struct {
	mu        sync.RWMutex
	ch        *chain // swapped whole by Adopt; read through snap
	encrypted bool
	keys      *keyOpener // owns the PKCS#11 tokens for the CA's life
	signers   map[string]crypto.Signer
	version   string // RecordsVersion of the records adopted last
	now       func() time.Time
	log       *slog.Logger
}

// chain is what signs today and what came before: every issuer, and the
// active intermediate with its root. A rotation builds a new chain and
// swaps it in, so a signature never mixes two chains.
type chain struct {
	issuers           []*Issuer
	root, inter       *x509.Certificate
	rootPEM, interPEM []byte
	signer            crypto.Signer
	constraints       []constraintSet // of inter and root
	activeID          string
}

// snap returns the chain in use now.
func (c *CA) snap() *chain {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ch
}

// Open loads the CA from opts.Dir: as ca.json lists it when Init made it
// (ErrPending while its intermediate waits for the offline root), else the
// four files of the bootstrap layout. When the directory is missing or
// holds none of the CA files, it creates a new root and intermediate there
// (see create). A directory holding only some of the files is an error: guessing
// would risk replacing a root that clients already trust.
func Open(opts Options) (*CA, error) {
	if opts.Dir == "" {
		return nil, errors.New("ca: Options.Dir is empty")
	}
	if opts.RootName == "" {
		opts.RootName = "certmint Root CA"
	}
	if opts.IntermediateName == "" {
		opts.IntermediateName = "certmint Intermediate CA"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, ManifestFile)); err == nil {
		c, err := loadManifest(opts)
		if err != nil {
			return nil, fmt.Errorf("ca: load %s: %w", opts.Dir, err)
		}
		return c, nil
	}
	present, missing, err := caFiles(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("ca: inspect %s: %w", opts.Dir, err)
	}
	switch {
	case len(missing) == 0:
	case len(present) == 0:
		if err := create(opts); err != nil {
			return nil, fmt.Errorf("ca: create in %s: %w", opts.Dir, err)
		}
	default:
		return nil, fmt.Errorf("ca: %s is incomplete: has %v but lacks %v; restore the missing files from backup, or move the directory away to create a new CA",
			opts.Dir, present, missing)
	}
	c, err := load(opts)
	if err != nil {
		return nil, fmt.Errorf("ca: load %s: %w", opts.Dir, err)
	}
	return c, nil
}

// caFiles reports which CA files exist in dir.
func caFiles(dir string) (present, missing []string, err error) {
	for _, name := range []string{RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile} {
		_, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case err == nil:
			present = append(present, name)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		default:
			return nil, nil, err
		}
	}
	return present, missing, nil
}

// load reads and cross-checks the four files of the layout serve
// bootstraps.
func load(opts Options) (*CA, error) {
	return loadIssuers(opts,
		issuerRecord{Role: RoleRoot, State: StateActive, Cert: RootCertFile, Key: RootKeyFile},
		issuerRecord{Role: RoleIntermediate, State: StateActive, Cert: IntermediateCertFile, Key: IntermediateKeyFile})
}

// loadManifest loads a CA made by `certmint ca init`, as ca.json lists it.
func loadManifest(opts Options) (*CA, error) {
	m, err := readManifest(opts.Dir)
	if err != nil {
		return nil, err
	}
	root, inter := m.find(RoleRoot), m.find(RoleIntermediate)
	if inter.State == StatePending {
		return nil, fmt.Errorf("%w: sign %s with the root and run `certmint ca import-intermediate`",
			ErrPending, filepath.Join(opts.Dir, inter.CSR))
	}
	return loadIssuers(opts, *root, *inter)
}

// loadIssuers reads and cross-checks a root and its active intermediate.
// A root key at hand (a file or in a token) is checked against the root
// certificate too, so a corrupted or mismatched root key is found at
// start-up rather than on the day it is needed; it is not kept afterwards.
func loadIssuers(opts Options, rootRec, interRec issuerRecord) (c *CA, err error) {
	dir := opts.Dir
	root, rootPEM, err := readCert(filepath.Join(dir, rootRec.Cert))
	if err != nil {
		return nil, err
	}
	inter, interPEM, err := readCert(filepath.Join(dir, interRec.Cert))
	if err != nil {
		return nil, err
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("%s is not signed by %s: %w", interRec.Cert, rootRec.Cert, err)
	}
	keys := &keyOpener{dir: dir, passphrase: opts.Passphrase}
	defer func() {
		if err != nil {
			keys.close()
		}
	}()
	encrypted := true
	if rootRec.Key != "" {
		rootKey, enc, err := keys.open(rootRec.Key)
		if err != nil {
			return nil, err
		}
		if err := matchKey(root, rootKey); err != nil {
			return nil, fmt.Errorf("%s: %w", keyLocation(rootRec.Key), err)
		}
		encrypted = encrypted && enc
	}
	interKey, enc, err := keys.open(interRec.Key)
	if err != nil {
		return nil, err
	}
	if err := matchKey(inter, interKey); err != nil {
		return nil, fmt.Errorf("%s: %w", keyLocation(interRec.Key), err)
	}
	rootIss := &Issuer{ID: keyID(root), Role: RoleRoot, State: StateActive, Cert: root, KeyLocation: keyLocation(rootRec.Key), KeyRef: rootRec.Key, pem: rootPEM}
	interIss := &Issuer{ID: keyID(inter), ParentID: rootIss.ID, Role: RoleIntermediate, State: StateActive, Cert: inter,
		KeyLocation: keyLocation(interRec.Key), KeyRef: interRec.Key, CRLName: LegacyCRLName, pem: interPEM, signer: interKey}
	return &CA{
		ch: &chain{
			issuers:     []*Issuer{rootIss, interIss},
			root:        root,
			inter:       inter,
			rootPEM:     rootPEM,
			interPEM:    interPEM,
			signer:      interKey,
			constraints: chainConstraints(inter, root),
			activeID:    interIss.ID,
		},
		encrypted: encrypted && enc,
		keys:      keys,
		signers:   map[string]crypto.Signer{interIss.ID: interKey},
		now:       opts.Now,
		log:       opts.Logger,
	}, nil
}

// readCert reads a file holding exactly one PEM certificate and returns it
// with its canonical PEM encoding.
func readCert(path string) (*x509.Certificate, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, certPEM(block.Bytes), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// matchKey checks that key is the private half of cert's public key.
func matchKey(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// Root returns the root certificate. Callers must not modify it.
func (c *CA) Root() *x509.Certificate { return c.snap().root }

// Intermediate returns the issuing certificate. Callers must not modify it.
func (c *CA) Intermediate() *x509.Certificate { return c.snap().inter }

// RootPEM returns the root certificate in PEM, the file clients install as
// their trust anchor.
func (c *CA) RootPEM() []byte { return bytes.Clone(c.snap().rootPEM) }

// RootFingerprint returns the lowercase hex SHA-256 of the root's DER, with
// no separators; operators compare it when pinning or installing the root.
func (c *CA) RootFingerprint() string {
	sum := sha256.Sum256(c.snap().root.Raw)
	return hex.EncodeToString(sum[:])
}

// Signer returns the intermediate's private key. All signing goes through
// this interface so a file key could be swapped for an HSM-backed one.
func (c *CA) Signer() crypto.Signer { return c.snap().signer }

// KeysEncrypted reports whether no CA key lies in plaintext on disk: every
// key file is encrypted, or the keys are in a token or offline.
func (c *CA) KeysEncrypted() bool { return c.encrypted }
