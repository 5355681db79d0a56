package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/certmint/certmint/internal/certpem"
)

// ErrBadInput marks a certificate or key given to `ca init` or
// `ca import-intermediate` that cannot be used; the message says which
// file and why. The CLI exits 2 on it.
var ErrBadInput = errors.New("ca: unusable certificate or key")

// inputError is an ErrBadInput whose message is only what is wrong.
type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrBadInput }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// readCertFile reads the first PEM certificate of path and any that
// follow it.
func readCertFile(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, badInput("cannot read %s: %v", path, errors.Unwrap(err))
	}
	certs, err := certpem.Parse(data)
	if errors.Is(err, certpem.ErrNone) {
		return nil, badInput("%s holds no PEM certificate", path)
	}
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	return certs, nil
}

// readForeignKey reads a key made by other tools: PKCS#8, SEC 1 ("EC
// PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"), unencrypted. certmint
// re-encrypts it under CERTMINT_CA_PASSPHRASE when one is set.
func readForeignKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, badInput("cannot read %s: %v", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, badInput("%s holds no PEM key", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY", pemTypeEncryptedKey:
		return nil, badInput("%s is encrypted; decrypt it for the import (openssl pkey -in %s -out plain.key), certmint encrypts its copy with CERTMINT_CA_PASSPHRASE", path, path)
	default:
		return nil, badInput("%s: PEM type %q is not a private key", path, block.Type)
	}
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, badInput("%s: key type %T cannot sign certificates", path, key)
}

// checkKeyPair refuses a key that is not the private half of cert.
func checkKeyPair(cert *x509.Certificate, certPath string, key crypto.Signer, keyPath string) error {
	if matchKey(cert, key) != nil {
		return badInput("the key %s does not match the certificate %s; give the key the certificate was issued for", keyPath, certPath)
	}
	return nil
}

// checkCA refuses a certificate that cannot act as a CA now.
func checkCA(cert *x509.Certificate, path string, now time.Time) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return badInput("%s (%q) is not a CA certificate: it lacks basicConstraints CA:TRUE", path, cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return badInput("%s (%q) is not a CA certificate: its keyUsage lacks keyCertSign", path, cert.Subject.CommonName)
	}
	if now.Before(cert.NotBefore) {
		return badInput("%s (%q) is not valid yet: notBefore is %s", path, cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return badInput("%s (%q) has expired: notAfter was %s", path, cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(cert.SubjectKeyId) == 0 {
		return badInput("%s (%q) has no subjectKeyIdentifier; reissue it with one (openssl: subjectKeyIdentifier=hash)", path, cert.Subject.CommonName)
	}
	return nil
}

// checkRoot refuses a root that cannot have an intermediate below it.
func checkRoot(root *x509.Certificate, path string, now time.Time) error {
	if err := checkCA(root, path, now); err != nil {
		return err
	}
	if root.CheckSignatureFrom(root) != nil {
		return badInput("%s (%q) is not self-signed: give the root certificate, the top of the chain", path, root.Subject.CommonName)
	}
	// RFC 5280 §4.2.1.9: pathLenConstraint 0 allows leaves only.
	if root.MaxPathLen == 0 && root.MaxPathLenZero {
		return badInput("%s (%q) has pathLenConstraint 0, which forbids an intermediate below it", path, root.Subject.CommonName)
	}
	return nil
}

// checkIntermediate refuses an intermediate that cannot issue under root
// now. The specific checks come first so the message names the cause;
// x509 path validation then catches anything they missed.
func checkIntermediate(inter *x509.Certificate, path string, root *x509.Certificate, now time.Time) error {
	if err := checkCA(inter, path, now); err != nil {
		return err
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return badInput("the chain does not verify: %s (%q, issued by %q) is not signed by the root %q",
			path, inter.Subject.CommonName, inter.Issuer.CommonName, root.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return badInput("the chain does not verify: %s under %q: %v", path, root.Subject.CommonName, err)
	}
	return nil
}
