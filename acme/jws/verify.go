package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// pssVerify accepts any salt length. RFC 7518 §3.5 says the salt is as long
// as the hash, but signers that use Go's rsa.SignPSS defaults produce the
// maximum length; accepting both costs no security.
var pssVerify = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}

// Verify checks the signature of m with key, after checking that the
// header's alg fits the key: RS256 and PS256 need RSA, ES256 P-256, ES384
// P-384, ES512 P-521, EdDSA Ed25519 (RFC 7518 §3, RFC 8037 §3.1). A
// mismatch is ErrBadAlgorithm; a signature that does not verify is
// ErrBadSignature. Verify uses the signing input captured by Parse.
func (m *Message) Verify(key crypto.PublicKey) error {
	if err := checkAlgKey(m.Header.Alg, key); err != nil {
		return err
	}
	si := m.input()
	ok := false
	switch m.Header.Alg {
	case RS256, PS256:
		k := key.(*rsa.PublicKey)
		d := sha256.Sum256(si)
		if m.Header.Alg == RS256 {
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], m.Signature) == nil
		} else {
			ok = rsa.VerifyPSS(k, crypto.SHA256, d[:], m.Signature, &pssVerify) == nil
		}
	case ES256:
		d := sha256.Sum256(si)
		ok = verifyECDSA(key.(*ecdsa.PublicKey), d[:], m.Signature, 32)
	case ES384:
		d := sha512.Sum384(si)
		ok = verifyECDSA(key.(*ecdsa.PublicKey), d[:], m.Signature, 48)
	case ES512:
		d := sha512.Sum512(si)
		ok = verifyECDSA(key.(*ecdsa.PublicKey), d[:], m.Signature, 66)
	case EdDSA:
		ok = ed25519.Verify(key.(ed25519.PublicKey), si, m.Signature)
	}
	if !ok {
		return fmt.Errorf("%w: JWS signature is invalid", ErrBadSignature)
	}
	return nil
}

// VerifyHMAC checks the MAC of an external account binding JWS (RFC 8555
// §7.3.4) with the CA-provided key, in constant time.
func (m *Message) VerifyHMAC(key []byte) error {
	var h func() hash.Hash
	switch m.Header.Alg {
	case HS256:
		h = sha256.New
	case HS384:
		h = sha512.New384
	case HS512:
		h = sha512.New
	default:
		return fmt.Errorf("%w: external account binding must use a MAC algorithm (HS256)", ErrBadAlgorithm)
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: empty MAC key", ErrBadKey)
	}
	mac := hmac.New(h, key)
	mac.Write(m.input())
	if !hmac.Equal(mac.Sum(nil), m.Signature) {
		return fmt.Errorf("%w: external account binding MAC is invalid", ErrBadSignature)
	}
	return nil
}

// input returns the JWS signing input (RFC 7515 §5.2), rebuilding it for a
// Message that was not made by Parse.
func (m *Message) input() []byte {
	if m.signingInput != nil {
		return m.signingInput
	}
	return []byte(m.ProtectedB64 + "." + m.PayloadB64)
}

// checkAlgKey checks that alg is an allowed signature algorithm that can be
// used with key, and that key is usable (no nil pointers, right sizes).
func checkAlgKey(alg string, key crypto.PublicKey) error {
	var want elliptic.Curve
	switch alg {
	case RS256, PS256:
		if k, ok := key.(*rsa.PublicKey); ok && k != nil && k.N != nil && k.E > 0 {
			return nil
		}
		return fmt.Errorf("%w: %s requires an RSA key", ErrBadAlgorithm, alg)
	case ES256:
		want = elliptic.P256()
	case ES384:
		want = elliptic.P384()
	case ES512:
		want = elliptic.P521()
	case EdDSA:
		if k, ok := key.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return nil
		}
		return fmt.Errorf("%w: EdDSA requires an Ed25519 key", ErrBadAlgorithm)
	default:
		return fmt.Errorf("%w: algorithm %q cannot be verified with a public key", ErrBadAlgorithm, alg)
	}
	if k, ok := key.(*ecdsa.PublicKey); ok && k != nil && k.Curve == want {
		return nil
	}
	return fmt.Errorf("%w: %s requires an ECDSA key on %s", ErrBadAlgorithm, alg, want.Params().Name)
}

// verifyECDSA checks a JWS ECDSA signature, which is R||S with each integer
// left-padded to the curve size (RFC 7518 §3.4), not ASN.1.
func verifyECDSA(k *ecdsa.PublicKey, digest, sig []byte, size int) bool {
	if len(sig) != 2*size {
		return false
	}
	var der [6 + 2*67]byte
	return ecdsa.VerifyASN1(k, digest, rawToDER(der[:0], sig[:size], sig[size:]))
}

// rawToDER encodes r and s as the ASN.1 SEQUENCE of two INTEGERs that
// crypto/ecdsa verifies without big.Int arithmetic.
func rawToDER(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	rl, sl := len(r)+int(r[0]>>7), len(s)+int(s[0]>>7)
	body := 2 + rl + 2 + sl
	dst = append(dst, 0x30)
	if body >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body))
	dst = appendInt(dst, r, rl)
	return appendInt(dst, s, sl)
}

func appendInt(dst, v []byte, l int) []byte {
	dst = append(dst, 0x02, byte(l))
	if l > len(v) {
		dst = append(dst, 0)
	}
	return append(dst, v...)
}

// trimZeros strips leading zero bytes, keeping one byte for zero itself.
func trimZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
