package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certmint/certmint/ca/kms"
)

// InitOptions configure Init. File paths name what the operator brings;
// every field is optional except Dir.
type InitOptions struct {
	Dir        string // DATA/ca
	Passphrase []byte // encrypts every key file written
	// RootName and IntermediateName are the common names of what
	// certmint creates.
	RootName, IntermediateName string
	// RootCert with RootKey: an existing root whose key is at hand.
	// RootCert alone (with IntermediateCert): an offline root.
	RootCert, RootKey string
	// OfflineRoot is the root certificate when its key stays elsewhere:
	// without IntermediateCert, Init writes the intermediate's CSR to
	// CSROut and leaves it pending.
	OfflineRoot, CSROut string
	// IntermediateCert with IntermediateKey: an existing intermediate,
	// under RootCert or OfflineRoot. Its own name constraints apply.
	IntermediateCert, IntermediateKey string
	// Constraints go into the intermediate certmint creates or requests.
	Constraints NameConstraints
	// KMS, a pkcs11: URI, puts the keys certmint creates in a token.
	KMS    string
	Now    func() time.Time
	Logger *slog.Logger
}

// InitResult says what Init made.
type InitResult struct {
	Pending         bool   // the intermediate waits for its certificate
	CSR             []byte // PEM, when Pending
	RootFingerprint string // lowercase hex SHA-256 of the root
}

// Init prepares a CA directory before the first serve. Every input is
// checked before anything is written; a failure leaves no file behind
// (keys generated in a token are deleted again). The files appear at once
// by renaming a staged directory, with ca.json, which lists the issuers,
// as the last file in place.
func Init(o InitOptions) (res *InitResult, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RootName == "" {
		o.RootName = "certmint Root CA"
	}
	if o.IntermediateName == "" {
		o.IntermediateName = "certmint Intermediate CA"
	}
	now := o.Now()
	has, err := holdsCA(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("ca: inspect %s: %w", o.Dir, err)
	}
	if has {
		return nil, fmt.Errorf("%w: %s; `ca init` never replaces a CA (move the directory away to start over)", ErrExists, o.Dir)
	}

	// What the operator brings, all checked before anything is created.
	var root *x509.Certificate
	var rootKey crypto.Signer
	rootPath := o.RootCert
	if o.OfflineRoot != "" {
		rootPath = o.OfflineRoot
	}
	if rootPath != "" {
		certs, err := readCertFile(rootPath)
		if err != nil {
			return nil, err
		}
		root = certs[0]
		if err := checkRoot(root, rootPath, now); err != nil {
			return nil, err
		}
	}
	if o.RootKey != "" {
		if rootKey, err = readForeignKey(o.RootKey); err != nil {
			return nil, err
		}
		if err := checkKeyPair(root, o.RootCert, rootKey, o.RootKey); err != nil {
			return nil, err
		}
	}
	var inter *x509.Certificate
	var interKey crypto.Signer
	if o.IntermediateCert != "" {
		certs, err := readCertFile(o.IntermediateCert)
		if err != nil {
			return nil, err
		}
		inter = certs[0]
		if interKey, err = readForeignKey(o.IntermediateKey); err != nil {
			return nil, err
		}
		if err := checkKeyPair(inter, o.IntermediateCert, interKey, o.IntermediateKey); err != nil {
			return nil, err
		}
		if err := checkIntermediate(inter, o.IntermediateCert, root, now); err != nil {
			return nil, err
		}
	}
	var csrOut *os.File
	if o.CSROut != "" {
		// Staged next to its destination so a bad path fails now.
		if csrOut, err = os.CreateTemp(filepath.Dir(o.CSROut), "."+filepath.Base(o.CSROut)+".tmp-"); err != nil {
			return nil, badInput("cannot write the CSR next to %s: %v", o.CSROut, errors.Unwrap(err))
		}
		defer func() {
			csrOut.Close()
			os.Remove(csrOut.Name()) // no-op after the rename
		}()
	}

	// Keys certmint creates: files, or in the token.
	keys := &newKeys{passphrase: o.Passphrase}
	defer func() {
		if err != nil {
			keys.undo()
		}
		if keys.token != nil {
			keys.token.Close()
		}
	}()
	if o.KMS != "" {
		if keys.uri, err = kms.ParseURI(o.KMS); err != nil {
			return nil, err
		}
		if keys.token, err = kms.Open(keys.uri); err != nil {
			return nil, err
		}
	}
	m := &manifest{Version: 1}
	var files []caFile
	rootRec := issuerRecord{Role: RoleRoot, State: StateActive, Cert: RootCertFile}
	switch {
	case root == nil: // a new root
		key, ref, f, err := keys.create(RootKeyFile, rootObject)
		if err != nil {
			return nil, err
		}
		der, err := newRootDER(o.RootName, key, now)
		if err != nil {
			return nil, err
		}
		if root, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
		rootKey, rootRec.Key, files = key, ref, append(files, f...)
	case rootKey != nil: // the operator's root, key at hand: certmint keeps a copy
		pemKey, err := encodeKey(rootKey, o.Passphrase)
		if err != nil {
			return nil, err
		}
		rootRec.Key, files = RootKeyFile, append(files, caFile{RootKeyFile, pemKey, 0o600})
	}
	files = append(files, caFile{RootCertFile, certPEM(root.Raw), 0o644})

	interRec := issuerRecord{Role: RoleIntermediate, State: StateActive, Cert: IntermediateCertFile}
	res = &InitResult{}
	switch {
	case inter != nil: // the operator's intermediate
		pemKey, err := encodeKey(interKey, o.Passphrase)
		if err != nil {
			return nil, err
		}
		interRec.Key = IntermediateKeyFile
		files = append(files, caFile{IntermediateKeyFile, pemKey, 0o600}, caFile{IntermediateCertFile, certPEM(inter.Raw), 0o644})
	default:
		key, ref, f, err := keys.create(IntermediateKeyFile, func(u *kms.URI) string { return u.Object })
		if err != nil {
			return nil, err
		}
		interRec.Key, files = ref, append(files, f...)
		if rootKey == nil { // offline root: ask it for a certificate
			csr, err := newIntermediateCSR(o.IntermediateName, key, o.Constraints, now)
			if err != nil {
				return nil, err
			}
			interRec.State, interRec.Cert, interRec.CSR = StatePending, "", IntermediateCSRFile
			files = append(files, caFile{IntermediateCSRFile, csr, 0o644})
			res.Pending, res.CSR = true, csr
		} else {
			der, err := newIntermediateDER(o.IntermediateName, key.Public(), o.Constraints, root, rootKey, now)
			if err != nil {
				return nil, err
			}
			files = append(files, caFile{IntermediateCertFile, certPEM(der), 0o644})
		}
	}
	m.Issuers = []issuerRecord{rootRec, interRec}
	files = append(files, caFile{ManifestFile, m.encode(), 0o644})

	if res.Pending && csrOut != nil {
		if err := csrOut.Chmod(0o644); err != nil { // a CSR is public
			return nil, fmt.Errorf("write %s: %w", o.CSROut, err)
		}
		if _, err := csrOut.Write(res.CSR); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.CSROut, err)
		}
		if err := csrOut.Sync(); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.CSROut, err)
		}
	}
	if err := writeNewCA(o.Dir, files); err != nil {
		return nil, fmt.Errorf("ca: write %s: %w", o.Dir, err)
	}
	if res.Pending && csrOut != nil {
		if err := os.Rename(csrOut.Name(), o.CSROut); err != nil {
			return nil, fmt.Errorf("the CA is in %s but %s could not be written (%v); the CSR is also in %s",
				o.Dir, o.CSROut, err, filepath.Join(o.Dir, IntermediateCSRFile))
		}
	}
	sum := sha256.Sum256(root.Raw)
	res.RootFingerprint = hex.EncodeToString(sum[:])
	o.Logger.Info("initialised CA", "dir", o.Dir, "root", root.Subject.CommonName,
		"pending", res.Pending, "root_key", keyLocation(rootRec.Key), "intermediate_key", keyLocation(interRec.Key))
	return res, nil
}

// writeNewCA puts files into dir, which must hold no CA: by renaming a
// staged directory when dir is missing or empty, else file by file with
// ca.json last.
func writeNewCA(dir string, files []caFile) error {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0 && os.Remove(dir) == nil:
	default:
		return createInPlace(dir, files)
	}
	return createByDirRename(dir, parent, files)
}

// newKeys creates the keys certmint makes during Init: P-256 key files,
// or key pairs in a PKCS#11 token, which undo deletes again if Init fails.
type newKeys struct {
	passphrase []byte
	uri        *kms.URI
	token      *kms.Token
	made       []string // token objects created
}

// rootObject is the root key's label next to an intermediate labelled
// "X-intermediate" (or "X"): "X-root".
func rootObject(u *kms.URI) string {
	return strings.TrimSuffix(u.Object, "-intermediate") + "-root"
}

// create returns a new key, its manifest reference, and the file to write
// for it (none for a token key).
func (k *newKeys) create(file string, object func(*kms.URI) string) (crypto.Signer, string, []caFile, error) {
	if k.token != nil {
		label := object(k.uri)
		s, err := k.token.Generate(label)
		if err != nil {
			return nil, "", nil, err
		}
		k.made = append(k.made, label)
		return s, k.uri.WithObject(label).String(), nil, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate key: %w", err)
	}
	data, err := encodeKey(key, k.passphrase)
	if err != nil {
		return nil, "", nil, err
	}
	return key, file, []caFile{{file, data, 0o600}}, nil
}

func (k *newKeys) undo() {
	for _, label := range k.made {
		_ = k.token.Delete(label)
	}
}
