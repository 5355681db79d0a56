package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
)

// JWK is a public JSON Web Key (RFC 7517) of one of the types ACME account
// keys may have: RSA, EC on P-256/P-384/P-521 (RFC 7518 §6) or Ed25519
// (RFC 8037). Key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
type JWK struct {
	Key crypto.PublicKey
}

// ParseJWK parses a public JWK. Members carrying private key material
// ("d", "p", ...) are rejected with ErrMalformed, since a client that sends
// them has leaked its key; an unknown kty or crv is ErrBadKey. Size policy
// is not applied here: see CheckKey.
func ParseJWK(data []byte) (*JWK, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: jwk is not valid JSON", ErrMalformed)
	}
	s, ok := newObjScanner(data)
	if !ok {
		return nil, fmt.Errorf("%w: jwk is not a JSON object", ErrMalformed)
	}
	var kty, crv, x, y, n, e []byte
	var seen int
	for {
		rawName, vs, ve, ok := s.next()
		if !ok {
			break
		}
		name := memberName(rawName)
		var bit int
		var dst *[]byte
		switch string(name) {
		case "kty":
			bit, dst = 1, &kty
		case "crv":
			bit, dst = 2, &crv
		case "x":
			bit, dst = 4, &x
		case "y":
			bit, dst = 8, &y
		case "n":
			bit, dst = 16, &n
		case "e":
			bit, dst = 32, &e
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			// RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2.
			return nil, fmt.Errorf("%w: jwk contains private key material", ErrMalformed)
		default:
			continue // "use", "key_ops", "alg", "kid", ... are not needed
		}
		if seen&bit != 0 {
			return nil, fmt.Errorf("%w: jwk has duplicate member %q", ErrMalformed, name)
		}
		seen |= bit
		v, _, ok := stringValue(data[vs:ve])
		if !ok {
			return nil, fmt.Errorf("%w: jwk member %q is not a string", ErrMalformed, name)
		}
		*dst = v
	}
	switch string(kty) {
	case "RSA":
		return parseRSA(n, e)
	case "EC":
		return parseEC(crv, x, y)
	case "OKP":
		return parseOKP(crv, x)
	case "":
		return nil, fmt.Errorf("%w: jwk has no kty", ErrMalformed)
	}
	return nil, fmt.Errorf("%w: key type %q is not supported (RSA, EC, OKP)", ErrBadKey, clip(kty))
}

// parseRSA builds an RSA key from its JWK members (RFC 7518 §6.3.1). Both
// are Base64urlUInt values, which must use the minimum number of octets: a
// leading zero would make our thumbprint differ from the client's.
func parseRSA(n, e []byte) (*JWK, error) {
	nb, ok := decodeUInt(n)
	if !ok {
		return nil, fmt.Errorf("%w: jwk n is not a minimal base64url integer", ErrMalformed)
	}
	eb, ok := decodeUInt(e)
	if !ok {
		return nil, fmt.Errorf("%w: jwk e is not a minimal base64url integer", ErrMalformed)
	}
	if len(eb) > 4 {
		return nil, fmt.Errorf("%w: RSA public exponent is too large", ErrBadKey)
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	return &JWK{Key: &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}}, nil
}

func decodeUInt(s []byte) ([]byte, bool) {
	dst := make([]byte, b64.DecodedLen(len(s)))
	n, ok := decodeB64(dst, s)
	if !ok || n == 0 || dst[0] == 0 {
		return nil, false
	}
	return dst[:n], true
}

// parseEC builds an EC key (RFC 7518 §6.2.1). Coordinates must have the
// full size of the curve; the point must be on the curve.
func parseEC(crv, x, y []byte) (*JWK, error) {
	var curve elliptic.Curve
	switch string(crv) {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	case "":
		return nil, fmt.Errorf("%w: EC jwk has no crv", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: curve %q is not supported (P-256, P-384, P-521)", ErrBadKey, clip(crv))
	}
	size := (curve.Params().BitSize + 7) / 8
	var point [1 + 2*66]byte
	point[0] = 4 // SEC 1 §2.3.3 uncompressed
	if b64.DecodedLen(len(x)) != size || b64.DecodedLen(len(y)) != size {
		return nil, fmt.Errorf("%w: EC jwk coordinates must be %d bytes", ErrMalformed, size)
	}
	if _, ok := decodeB64(point[1:1+size], x); !ok {
		return nil, fmt.Errorf("%w: jwk x is not unpadded base64url", ErrMalformed)
	}
	if _, ok := decodeB64(point[1+size:1+2*size], y); !ok {
		return nil, fmt.Errorf("%w: jwk y is not unpadded base64url", ErrMalformed)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point[:1+2*size])
	if err != nil {
		return nil, fmt.Errorf("%w: EC point is not on the curve", ErrBadKey)
	}
	return &JWK{Key: pub}, nil
}

// parseOKP builds an Ed25519 key (RFC 8037 §2). X25519 and Ed448 are not
// signature algorithms ACME accepts.
func parseOKP(crv, x []byte) (*JWK, error) {
	if string(crv) != "Ed25519" {
		return nil, fmt.Errorf("%w: OKP curve %q is not supported (Ed25519)", ErrBadKey, clip(crv))
	}
	if b64.DecodedLen(len(x)) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 jwk x must be %d bytes", ErrMalformed, ed25519.PublicKeySize)
	}
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	if _, ok := decodeB64(pub, x); !ok {
		return nil, fmt.Errorf("%w: jwk x is not unpadded base64url", ErrMalformed)
	}
	return &JWK{Key: pub}, nil
}

// CheckKey applies the account key policy (RFC 8555 §6.2 leaves it to the
// server): RSA of 2048 to 8192 bits with an odd public exponent of at least
// 65537, ECDSA on P-256, P-384 or P-521 with a valid point, or Ed25519.
// Anything else is ErrBadKey.
func CheckKey(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return fmt.Errorf("%w: empty RSA key", ErrBadKey)
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return fmt.Errorf("%w: RSA key is %d bits, allowed are 2048 to 8192", ErrBadKey, bits)
		}
		if k.E < 65537 || k.E%2 == 0 || k.E > 1<<31-1 {
			return fmt.Errorf("%w: RSA public exponent must be odd and at least 65537", ErrBadKey)
		}
		return nil
	case *ecdsa.PublicKey:
		if k == nil || (k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521()) {
			return fmt.Errorf("%w: EC keys must use P-256, P-384 or P-521", ErrBadKey)
		}
		if _, err := k.Bytes(); err != nil {
			return fmt.Errorf("%w: EC point is not on the curve", ErrBadKey)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key must be %d bytes", ErrBadKey, ed25519.PublicKeySize)
		}
		return nil
	}
	return fmt.Errorf("%w: key type %T is not supported", ErrBadKey, key)
}

// AlgFor returns the algorithm a client would sign with key: RS256 for RSA,
// ES256/ES384/ES512 by curve, EdDSA for Ed25519; "" otherwise.
func AlgFor(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return RS256
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ES256
		case elliptic.P384():
			return ES384
		case elliptic.P521():
			return ES512
		}
	case ed25519.PublicKey:
		return EdDSA
	}
	return ""
}

// MarshalJWK returns the canonical public JWK of key: only the required
// members, in lexicographic order, no whitespace. This is exactly the
// RFC 7638 §3 thumbprint input, so the stored form and the thumbprint of an
// account key always agree.
func MarshalJWK(key crypto.PublicKey) ([]byte, error) {
	return appendJWK(make([]byte, 0, 128), key)
}

func appendJWK(dst []byte, key crypto.PublicKey) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.E <= 0 {
			return nil, fmt.Errorf("%w: empty RSA key", ErrBadKey)
		}
		e := big.NewInt(int64(k.E)).Bytes()
		dst = append(dst, `{"e":"`...)
		dst = b64.AppendEncode(dst, e)
		dst = append(dst, `","kty":"RSA","n":"`...)
		dst = b64.AppendEncode(dst, k.N.Bytes())
		return append(dst, `"}`...), nil
	case *ecdsa.PublicKey:
		if k == nil {
			return nil, fmt.Errorf("%w: empty EC key", ErrBadKey)
		}
		crv := ""
		switch k.Curve {
		case elliptic.P256():
			crv = "P-256"
		case elliptic.P384():
			crv = "P-384"
		case elliptic.P521():
			crv = "P-521"
		default:
			return nil, fmt.Errorf("%w: EC keys must use P-256, P-384 or P-521", ErrBadKey)
		}
		pt, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: EC point is not on the curve", ErrBadKey)
		}
		size := (len(pt) - 1) / 2
		dst = append(dst, `{"crv":"`...)
		dst = append(dst, crv...)
		dst = append(dst, `","kty":"EC","x":"`...)
		dst = b64.AppendEncode(dst, pt[1:1+size])
		dst = append(dst, `","y":"`...)
		dst = b64.AppendEncode(dst, pt[1+size:])
		return append(dst, `"}`...), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key must be %d bytes", ErrBadKey, ed25519.PublicKeySize)
		}
		dst = append(dst, `{"crv":"Ed25519","kty":"OKP","x":"`...)
		dst = b64.AppendEncode(dst, k)
		return append(dst, `"}`...), nil
	}
	return nil, fmt.Errorf("%w: key type %T is not supported", ErrBadKey, key)
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of key, base64url
// without padding: the account part of key authorizations (RFC 8555 §8.1).
func Thumbprint(key crypto.PublicKey) (string, error) {
	var buf [1024]byte // room for RSA keys up to 4096 bits; larger ones grow it
	j, err := appendJWK(buf[:0], key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(j)
	return b64.EncodeToString(sum[:]), nil
}

// Thumbprint returns the RFC 7638 thumbprint of k, or "" when k does not
// hold a supported key (never the case after ParseJWK).
func (k *JWK) Thumbprint() string {
	t, _ := Thumbprint(k.Key)
	return t
}

// MarshalJSON returns the canonical public JWK (see MarshalJWK).
func (k *JWK) MarshalJSON() ([]byte, error) { return MarshalJWK(k.Key) }

// clip bounds client-supplied text echoed in error details.
func clip(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
