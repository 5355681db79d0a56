package ca

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/crypto/argon2"
)

// PEM block types of key files. A plaintext key is standard PKCS#8 so that
// openssl and every TLS stack can read it; an encrypted key uses a type of
// our own because its format (Argon2id + AES-256-GCM) is ours too.
const (
	pemTypePlainKey     = "PRIVATE KEY"
	pemTypeEncryptedKey = "CERTMINT ENCRYPTED PRIVATE KEY"
)

// PEM headers of an encrypted key. Everything needed to decrypt, except the
// passphrase, travels with the file so the cost parameters can be raised later
// without breaking old files.
const (
	hdrKDF     = "KDF"
	hdrTime    = "Argon2-Time"
	hdrMemory  = "Argon2-Memory-KiB"
	hdrThreads = "Argon2-Threads"
	hdrSalt    = "Salt"
	hdrCipher  = "Cipher"
	hdrNonce   = "Nonce"

	kdfArgon2id  = "argon2id"
	cipherAESGCM = "AES-256-GCM"
)

// kdfParams are the Argon2id cost parameters.
type kdfParams struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// defaultKDF is the second recommended option of RFC 9106 §4 (t=3, 64 MiB,
// p=4), which suits a server that derives a key once at start-up. It is a
// variable only so tests can make key files cheaply.
var defaultKDF = kdfParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Bounds applied to parameters read from a file, so that a tampered header
// cannot make start-up allocate unbounded memory or spin forever.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 * 1024 * 1024
)

// encodeKey returns the PEM encoding of key: plain PKCS#8 when passphrase is
// empty, otherwise PKCS#8 sealed with AES-256-GCM under an Argon2id key.
func encodeKey(key crypto.Signer, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemTypePlainKey, Bytes: der}), nil
	}
	p := defaultKDF
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("key salt: %w", err)
	}
	aead, err := keyAEAD(passphrase, salt, p)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("key nonce: %w", err)
	}
	sealed := aead.Seal(nil, nonce, der, keyAAD(p))
	return pem.EncodeToMemory(&pem.Block{
		Type: pemTypeEncryptedKey,
		Headers: map[string]string{
			hdrKDF:     kdfArgon2id,
			hdrTime:    strconv.FormatUint(uint64(p.Time), 10),
			hdrMemory:  strconv.FormatUint(uint64(p.MemoryKiB), 10),
			hdrThreads: strconv.FormatUint(uint64(p.Threads), 10),
			hdrSalt:    base64.StdEncoding.EncodeToString(salt),
			hdrCipher:  cipherAESGCM,
			hdrNonce:   base64.StdEncoding.EncodeToString(nonce),
		},
		Bytes: sealed,
	}), nil
}

// keyAAD binds the cost parameters to the ciphertext, so editing a header
// is detected as tampering rather than silently weakening the file.
func keyAAD(p kdfParams) []byte {
	return fmt.Appendf(nil, "certmint-key-v1|%s|%s|t=%d|m=%d|p=%d",
		kdfArgon2id, cipherAESGCM, p.Time, p.MemoryKiB, p.Threads)
}

func keyAEAD(passphrase, salt []byte, p kdfParams) (cipher.AEAD, error) {
	k := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, 32)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("key cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key cipher: %w", err)
	}
	return aead, nil
}

// decodeKey parses a key file written by encodeKey. An encrypted key with a
// missing or wrong passphrase yields ErrBadPassphrase. A plaintext key is
// accepted even when a passphrase is given (see Options.Passphrase); the
// returned bool reports whether the file was encrypted.
func decodeKey(data, passphrase []byte) (crypto.Signer, bool, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, false, errors.New("no PEM block found")
	}
	var der []byte
	encrypted := false
	switch block.Type {
	case pemTypePlainKey:
		der = block.Bytes
	case pemTypeEncryptedKey:
		encrypted = true
		if len(passphrase) == 0 {
			return nil, true, fmt.Errorf("%w: key is encrypted and no passphrase was given", ErrBadPassphrase)
		}
		p, salt, nonce, err := parseKeyHeaders(block.Headers)
		if err != nil {
			return nil, true, err
		}
		aead, err := keyAEAD(passphrase, salt, p)
		if err != nil {
			return nil, true, err
		}
		if len(nonce) != aead.NonceSize() {
			return nil, true, errors.New("bad Nonce header length")
		}
		der, err = aead.Open(nil, nonce, block.Bytes, keyAAD(p))
		if err != nil {
			// GCM cannot tell a wrong passphrase from a corrupted file;
			// the passphrase is by far the likelier cause.
			return nil, true, fmt.Errorf("%w: decryption failed (wrong passphrase or corrupted file)", ErrBadPassphrase)
		}
	default:
		return nil, false, fmt.Errorf("unexpected PEM type %q", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, encrypted, fmt.Errorf("parse PKCS#8 key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, encrypted, fmt.Errorf("key type %T cannot sign", key)
	}
	return signer, encrypted, nil
}

func parseKeyHeaders(h map[string]string) (p kdfParams, salt, nonce []byte, err error) {
	if h[hdrKDF] != kdfArgon2id {
		return p, nil, nil, fmt.Errorf("unsupported %s header %q", hdrKDF, h[hdrKDF])
	}
	if h[hdrCipher] != cipherAESGCM {
		return p, nil, nil, fmt.Errorf("unsupported %s header %q", hdrCipher, h[hdrCipher])
	}
	t, err := strconv.ParseUint(h[hdrTime], 10, 32)
	if err != nil || t == 0 || t > maxKDFTime {
		return p, nil, nil, fmt.Errorf("bad %s header", hdrTime)
	}
	m, err := strconv.ParseUint(h[hdrMemory], 10, 32)
	if err != nil || m < 8 || m > maxKDFMemoryKiB {
		return p, nil, nil, fmt.Errorf("bad %s header", hdrMemory)
	}
	th, err := strconv.ParseUint(h[hdrThreads], 10, 8)
	if err != nil || th == 0 {
		return p, nil, nil, fmt.Errorf("bad %s header", hdrThreads)
	}
	salt, err = base64.StdEncoding.DecodeString(h[hdrSalt])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("bad %s header", hdrSalt)
	}
	nonce, err = base64.StdEncoding.DecodeString(h[hdrNonce])
	if err != nil {
		return p, nil, nil, fmt.Errorf("bad %s header", hdrNonce)
	}
	return kdfParams{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(th)}, salt, nonce, nil
}

// checkKeyMode refuses a key file that group or others may read or write:
// such a key must be assumed exposed, and fixing the mode is the operator's
// call, not ours.
func checkKeyMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil // POSIX modes mean nothing there.
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s`",
			ErrInsecureKeyFile, path, fi.Mode().Perm(), path)
	}
	return nil
}

// readKeyFile checks the mode of path and then decodes it.
func readKeyFile(path string, passphrase []byte) (crypto.Signer, bool, error) {
	if err := checkKeyMode(path); err != nil {
		return nil, false, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	key, enc, err := decodeKey(data, passphrase)
	if err != nil {
		return nil, enc, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, enc, nil
}
