package ca

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPEMImport feeds arbitrary bytes to the two readers of the CA's
// files: decodeKey (key files, plaintext PKCS#8 or our encrypted format)
// and readCert (certificate files). Neither may panic; a key decodeKey
// accepts must survive an encode/decode round trip unchanged, and readCert
// must return the canonical PEM of the certificate it parsed. Seeds live in
// testdata/fuzz/FuzzPEMImport.
func FuzzPEMImport(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("garbage"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// Without a passphrase no KDF runs, so every input is cheap.
		key, enc, err := decodeKey(data, nil)
		if err == nil {
			if enc {
				t.Fatal("an encrypted key decoded without a passphrase")
			}
			roundTrip(t, key, nil)
		}
		// With one, only headers within a small budget: the bounds in
		// parseKeyHeaders allow gigabytes, which is right for a real file
		// but would make the fuzzer measure Argon2 instead of the parser.
		if p, _, _, herr := peekKDF(data); herr == nil && p.MemoryKiB <= 1024 && p.Time <= 2 {
			key, _, err := decodeKey(data, []byte("fuzz passphrase"))
			if err == nil {
				roundTrip(t, key, []byte("fuzz passphrase"))
			}
		}

		path := filepath.Join(dir, "cert.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cert, canon, err := readCert(path)
		if err != nil {
			return
		}
		if !bytes.Equal(canon, certPEM(cert.Raw)) {
			t.Fatal("readCert returned PEM that is not the parsed certificate's")
		}
		if err := os.WriteFile(path, canon, 0o600); err != nil {
			t.Fatal(err)
		}
		again, _, err := readCert(path)
		if err != nil || !bytes.Equal(again.Raw, cert.Raw) {
			t.Fatalf("canonical PEM does not read back: %v", err)
		}
	})
}

// peekKDF returns the KDF parameters of an encrypted key file, if any.
func peekKDF(data []byte) (kdfParams, []byte, []byte, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemTypeEncryptedKey {
		return kdfParams{}, nil, nil, errors.New("not an encrypted key")
	}
	return parseKeyHeaders(block.Headers)
}

// roundTrip checks that key encodes and decodes to an equal key.
func roundTrip(t *testing.T, key crypto.Signer, passphrase []byte) {
	t.Helper()
	out, err := encodeKey(key, passphrase)
	if err != nil {
		// encodeKey only writes what x509.MarshalPKCS8PrivateKey can.
		return
	}
	back, _, err := decodeKey(out, passphrase)
	if err != nil {
		t.Fatalf("re-encoded key does not decode: %v", err)
	}
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	if eq, ok := key.(equaler); ok && !eq.Equal(back) {
		t.Fatal("key changed in the round trip")
	}
}
