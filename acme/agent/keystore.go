package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"

	"github.com/certmint/certmint/internal/atomicfile"
	"software.sslmate.com/src/go-pkcs12"
)

// Java store file names, as Spring Boot's server.ssl.key-store and
// server.ssl.trust-store (or javax.net.ssl.trustStore) would name them.
const (
	KeystoreFile   = "keystore.p12"
	TruststoreFile = "truststore.p12"
)

// RootAlias is the alias of the root in the trust store.
const RootAlias = "certmint-root"

// WriteJavaStores writes keystore.p12 (the key, the leaf and its chain
// under the alias keyAlias, the first name by default; mode 0600) and truststore.p12 (root as a trusted-certificate entry,
// which go-pkcs12 marks with the attribute Java needs) into dir, both
// protected by password, with modern algorithms (PBES2/AES-256, SHA-256
// MAC) that OpenSSL 3 and Java 11.0.12+ read without legacy options.
func WriteJavaStores(dir string, cert *tls.Certificate, roots []*x509.Certificate, password, keyAlias string) error {
	var chain []*x509.Certificate
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("keystore chain: %w", err)
		}
		chain = append(chain, c)
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("keystore leaf: %w", err)
		}
	}
	if keyAlias == "" {
		keyAlias = firstName(leaf)
	}
	ks, err := pkcs12.Modern.Encode(cert.PrivateKey, leaf, chain, password)
	if err != nil {
		return fmt.Errorf("encode %s: %w", KeystoreFile, err)
	}
	if ks, err = setKeyAlias(ks, password, keyAlias); err != nil {
		return fmt.Errorf("encode %s: %w", KeystoreFile, err)
	}
	// The first root keeps RootAlias; others (a root rotation's new root)
	// are named by their fingerprint.
	entries := make([]pkcs12.TrustStoreEntry, 0, len(roots))
	for i, r := range roots {
		name := RootAlias
		if i > 0 {
			name = RootAlias + "-" + Fingerprint(r)[:16]
		}
		entries = append(entries, pkcs12.TrustStoreEntry{Cert: r, FriendlyName: name})
	}
	ts, err := pkcs12.Modern.EncodeTrustStoreEntries(entries, password)
	if err != nil {
		return fmt.Errorf("encode %s: %w", TruststoreFile, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, KeystoreFile), ks, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, TruststoreFile), ts, 0o644)
}

// firstName is the certificate's first DNS name, else its first IP address.
func firstName(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return leaf.Subject.CommonName
}
