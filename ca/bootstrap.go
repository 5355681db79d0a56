package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Lifetimes of the CA certificates. The root outlives the intermediate by
// five years so the intermediate can be re-issued under the same root.
const (
	rootValidityYears         = 10
	intermediateValidityYears = 5
	// backdate absorbs clock skew between the CA and relying parties.
	backdate = time.Minute
)

// create generates a new root and intermediate and writes the four CA files.
//
// The files are written into a temporary directory next to opts.Dir which is
// then renamed into place, so a crash leaves either nothing or a complete
// CA, never a half-written one. When opts.Dir already exists and holds other
// files (it cannot be replaced by a rename), the files are staged inside it
// and renamed one by one, keys first and root.pem last.
func create(opts Options) error {
	files, err := newCAFiles(opts)
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(opts.Dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}

	entries, err := os.ReadDir(opts.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = lostRace(opts.Dir, createByDirRename(opts.Dir, parent, files))
	case err != nil:
		return err
	case len(entries) == 0:
		// os.Rename refuses to replace a directory, even an empty one.
		if err := os.Remove(opts.Dir); err != nil {
			err = createInPlace(opts.Dir, files)
		} else {
			err = lostRace(opts.Dir, createByDirRename(opts.Dir, parent, files))
		}
	default:
		err = createInPlace(opts.Dir, files)
	}
	if err != nil {
		return err
	}
	opts.Logger.Info("created new CA", "dir", opts.Dir, "root", opts.RootName,
		"intermediate", opts.IntermediateName, "encrypted", len(opts.Passphrase) > 0)
	return nil
}

// caFile is one file to write, in write order.
type caFile struct {
	name string
	data []byte
	mode os.FileMode
}

// newCAFiles generates the keys and certificates and encodes them.
func newCAFiles(opts Options) ([]caFile, error) {
	now := opts.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate intermediate key: %w", err)
	}

	rootDER, err := newRootDER(opts.RootName, rootKey, now)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	interDER, err := newIntermediateDER(opts.IntermediateName, interKey.Public(), NameConstraints{}, root, rootKey, now)
	if err != nil {
		return nil, err
	}

	rootKeyPEM, err := encodeKey(rootKey, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	interKeyPEM, err := encodeKey(interKey, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	return []caFile{
		{RootKeyFile, rootKeyPEM, 0o600},
		{IntermediateKeyFile, interKeyPEM, 0o600},
		{IntermediateCertFile, certPEM(interDER), 0o644},
		{RootCertFile, certPEM(rootDER), 0o644},
	}, nil
}

// caTemplate returns the fields shared by the root and the intermediate.
func caTemplate(cn string, pub crypto.PublicKey, now time.Time, years int) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.AddDate(years, 0, 0).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}, nil
}

// createByDirRename writes files into a fresh temp dir in parent and renames
// it to dir; the rename fails if dir appeared meanwhile.
func createByDirRename(dir, parent string, files []caFile) error {
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFileSync(filepath.Join(tmp, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return syncDir(parent)
}

// lostRace turns the failure of a rename into success when a concurrent
// Open created a complete CA in dir first: its CA is then used.
func lostRace(dir string, err error) error {
	if err != nil {
		if _, missing, ierr := caFiles(dir); ierr == nil && len(missing) == 0 {
			return nil
		}
	}
	return err
}

// createInPlace stages files in a temp dir inside dir and renames them into
// dir one at a time; root.pem goes last as the commit marker.
func createInPlace(dir string, files []caFile) error {
	tmp, err := os.MkdirTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if err := writeFileSync(filepath.Join(tmp, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(tmp, f.name), filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// writeFileSync creates path exclusively with mode and flushes it to disk.
// The explicit Chmod makes the mode independent of the umask.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes a directory so renames inside it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
