package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"
)

// newRootDER self-signs a root for key. MaxPathLen 1 allows exactly one
// intermediate below it.
func newRootDER(cn string, key crypto.Signer, now time.Time) ([]byte, error) {
	tmpl, err := caTemplate(cn, key.Public(), now, rootValidityYears)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen = 1
	// RFC 5280 §4.2.1.1 allows omitting the AKI on a self-signed
	// certificate; including it helps path builders and costs nothing.
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign root: %w", err)
	}
	return der, nil
}

// intermediateTemplate is the intermediate certmint asks for: it may sign
// leaves only (RFC 5280 §4.2.1.9 pathLen 0), with nc as a critical name
// constraints extension.
func intermediateTemplate(cn string, pub crypto.PublicKey, nc NameConstraints, now time.Time) (*x509.Certificate, error) {
	tmpl, err := caTemplate(cn, pub, now, intermediateValidityYears)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	nc.apply(tmpl)
	return tmpl, nil
}

// newIntermediateDER signs an intermediate for pub with the root's key.
// It never outlives the root.
func newIntermediateDER(cn string, pub crypto.PublicKey, nc NameConstraints, root *x509.Certificate, rootKey crypto.Signer, now time.Time) ([]byte, error) {
	tmpl, err := intermediateTemplate(cn, pub, nc, now)
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(root.NotAfter) {
		tmpl.NotAfter = root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
	if err != nil {
		return nil, fmt.Errorf("sign intermediate: %w", err)
	}
	return der, nil
}

// Extensions an intermediate's CSR requests (RFC 2986 extensionRequest).
var csrExtensions = map[string]bool{
	"2.5.29.14": true, // subjectKeyIdentifier
	"2.5.29.15": true, // keyUsage: keyCertSign, cRLSign
	"2.5.29.19": true, // basicConstraints: CA:TRUE, pathlen 0
	"2.5.29.30": true, // nameConstraints
}

// newIntermediateCSR returns the PEM CSR an offline root signs: it asks
// for CA:TRUE with pathlen 0, keyCertSign and cRLSign, the subject key
// identifier and the name constraints, all as the root should copy them
// (openssl x509 -req -copy_extensions copyall).
//
// The extensions are encoded by crypto/x509 itself: a throwaway
// certificate is built from the same template certmint uses for its own
// intermediates, and its extensions are copied into the request. One
// encoder, so a CSR and a self-made intermediate cannot differ.
func newIntermediateCSR(cn string, key crypto.Signer, nc NameConstraints, now time.Time) ([]byte, error) {
	tmpl, err := intermediateTemplate(cn, key.Public(), nc, now)
	if err != nil {
		return nil, err
	}
	scratch, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), scratch)
	if err != nil {
		return nil, fmt.Errorf("encode CSR extensions: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	var exts []pkix.Extension
	for _, e := range cert.Extensions {
		if csrExtensions[e.Id.String()] {
			exts = append(exts, e)
		}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: cn},
		ExtraExtensions: exts,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), nil
}

// parseCSR parses a PEM CSR and says whether it asks for name
// constraints.
func parseCSR(data []byte) (pub crypto.PublicKey, constrained bool, err error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, false, fmt.Errorf("no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, false, err
	}
	for _, e := range csr.Extensions {
		if e.Id.String() == "2.5.29.30" {
			constrained = true
		}
	}
	return csr.PublicKey, constrained, nil
}
