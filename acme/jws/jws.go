// Package jws parses and verifies the JSON Web Signatures that carry every
// ACME POST request (RFC 8555 §6.2, RFC 7515), and handles the JSON Web Keys
// inside them (RFC 7517, RFC 7518 §6, RFC 8037, RFC 7638 thumbprints).
//
// Only the standard library is used and the parse is hand-rolled: it runs
// on every request, and it must be strict where generic JOSE libraries are
// lenient (flattened serialization only, case-sensitive names, no
// unprotected header, a short list of algorithms).
package jws

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Errors returned by this package. They are always wrapped with a detail
// that is safe to show to the client; callers map them with errors.Is to
// RFC 8555 §6.7 problem types.
var (
	// ErrMalformed maps to urn:ietf:params:acme:error:malformed.
	ErrMalformed = errors.New("jws: malformed")
	// ErrBadAlgorithm maps to urn:ietf:params:acme:error:badSignatureAlgorithm.
	ErrBadAlgorithm = errors.New("jws: unsupported algorithm")
	// ErrBadKey maps to urn:ietf:params:acme:error:badPublicKey.
	ErrBadKey = errors.New("jws: unacceptable key")
	// ErrBadSignature maps to malformed as well: RFC 8555 has no dedicated
	// type for a signature that does not verify.
	ErrBadSignature = errors.New("jws: bad signature")
)

// Algorithm identifiers (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	ES384 = "ES384"
	ES512 = "ES512"
	EdDSA = "EdDSA"
	HS256 = "HS256"
	HS384 = "HS384"
	HS512 = "HS512"
)

// Algorithms lists the signature algorithms accepted for account keys, in
// the order advertised in a badSignatureAlgorithm problem's "algorithms"
// field (RFC 8555 §6.2).
var Algorithms = []string{RS256, PS256, ES256, ES384, ES512, EdDSA}

// Header is the protected header of an ACME JWS (RFC 8555 §6.2).
type Header struct {
	Alg   string
	Nonce string
	URL   string
	KID   string
	JWK   *JWK // nil when KID is used
}

// Message is a parsed flattened JWS.
type Message struct {
	Header  Header
	Payload []byte // decoded; empty for POST-as-GET (RFC 8555 §6.3)

	// ProtectedB64 and PayloadB64 are the encoded parts as received. They
	// are kept for the inner JWS of keyChange (§7.3.5) and external account
	// binding (§7.3.4), whose checks compare against the outer request.
	ProtectedB64, PayloadB64 string
	Signature                []byte

	// signingInput is ProtectedB64 + "." + PayloadB64 (RFC 7515 §5.2),
	// captured at parse time so that verification does not rebuild it.
	signingInput []byte
}

// PostAsGet reports whether the payload is the empty string, which is how
// RFC 8555 §6.3 marks a POST-as-GET request ("{}" is not one).
func (m *Message) PostAsGet() bool { return m.PayloadB64 == "" }

// ParseOptions selects the rules that differ between the outer JWS of a
// request and the inner JWS objects of RFC 8555 §7.3.4 and §7.3.5.
type ParseOptions struct {
	// RequireNonce demands a "nonce" (RFC 8555 §6.5): set it for every
	// request JWS.
	RequireNonce bool
	// ForbidNonce rejects a "nonce": the inner JWS of keyChange and of an
	// external account binding MUST NOT carry one (§7.3.5, §7.3.4).
	ForbidNonce bool
	// AllowHMAC additionally accepts HS256, HS384 and HS512, with a "kid"
	// and no "jwk". Only for the external account binding JWS (§7.3.4);
	// verify it with VerifyHMAC.
	AllowHMAC bool
}

// Parse parses body as a flattened JSON JWS (RFC 7515 §7.2.2) carrying an
// ACME protected header (RFC 8555 §6.2). It checks structure and policy but
// not the signature: call Verify (or VerifyHMAC) next.
//
// The compact and general serializations, an unprotected "header", "crit"
// and "b64": false are rejected with ErrMalformed; an algorithm outside
// Algorithms with ErrBadAlgorithm, before any other fault (RFC 8555 §6.2;
// see CheckAlgorithm); an embedded key that fails CheckKey with ErrBadKey.
func Parse(body []byte, opts ParseOptions) (*Message, error) {
	m, err := parse(body, opts)
	if err != nil {
		return nil, algFirst(body, opts, err)
	}
	return m, nil
}

func parse(body []byte, opts ParseOptions) (*Message, error) {
	if !json.Valid(body) {
		return nil, fmt.Errorf("%w: request body is not a JSON object (flattened JWS serialization required)", ErrMalformed)
	}
	s, ok := newObjScanner(body)
	if !ok {
		return nil, fmt.Errorf("%w: request body is not a JSON object (flattened JWS serialization required)", ErrMalformed)
	}
	const (
		seenProtected = 1 << iota
		seenPayload
		seenSignature
	)
	var seen int
	var prot, pay, sig []byte
	for {
		rawName, vs, ve, ok := s.next()
		if !ok {
			break
		}
		var bit int
		var dst *[]byte
		switch string(memberName(rawName)) {
		case "protected":
			bit, dst = seenProtected, &prot
		case "payload":
			bit, dst = seenPayload, &pay
		case "signature":
			bit, dst = seenSignature, &sig
		case "signatures":
			return nil, fmt.Errorf("%w: general JWS serialization is not supported, use the flattened form (RFC 8555 §6.2)", ErrMalformed)
		case "header":
			return nil, fmt.Errorf("%w: unprotected header is not allowed (RFC 8555 §6.2)", ErrMalformed)
		default:
			continue // RFC 7515 §7.2.1: unknown members are ignored
		}
		if seen&bit != 0 {
			return nil, fmt.Errorf("%w: duplicate member %q", ErrMalformed, rawName)
		}
		seen |= bit
		v, _, ok := stringValue(body[vs:ve])
		if !ok {
			return nil, fmt.Errorf("%w: member %q is not a string", ErrMalformed, rawName)
		}
		*dst = v
	}
	switch {
	case seen&seenProtected == 0 || len(prot) == 0:
		return nil, fmt.Errorf("%w: protected header is missing", ErrMalformed)
	case seen&seenPayload == 0:
		return nil, fmt.Errorf("%w: payload is missing", ErrMalformed)
	case seen&seenSignature == 0 || len(sig) == 0:
		return nil, fmt.Errorf("%w: signature is missing", ErrMalformed)
	}

	// One allocation holds the signing input and the three decoded parts.
	siLen := len(prot) + 1 + len(pay)
	hLen, pLen, sLen := b64.DecodedLen(len(prot)), b64.DecodedLen(len(pay)), b64.DecodedLen(len(sig))
	buf := make([]byte, siLen+hLen+pLen+sLen)
	copy(buf, prot)
	buf[len(prot)] = '.'
	copy(buf[len(prot)+1:], pay)
	off := siLen
	hdr, ok := decodeInto(buf, &off, hLen, prot)
	if !ok {
		return nil, fmt.Errorf("%w: protected header is not unpadded base64url", ErrMalformed)
	}
	payload, ok := decodeInto(buf, &off, pLen, pay)
	if !ok {
		return nil, fmt.Errorf("%w: payload is not unpadded base64url", ErrMalformed)
	}
	signature, ok := decodeInto(buf, &off, sLen, sig)
	if !ok {
		return nil, fmt.Errorf("%w: signature is not unpadded base64url", ErrMalformed)
	}

	h, err := parseHeader(hdr, opts)
	if err != nil {
		return nil, err
	}
	si := string(buf[:siLen])
	return &Message{
		Header:       h,
		Payload:      payload,
		ProtectedB64: si[:len(prot)],
		PayloadB64:   si[len(prot)+1:],
		Signature:    signature,
		signingInput: buf[:siLen:siLen],
	}, nil
}

// decodeInto decodes src into buf[*off:*off+n] and advances *off. The
// result is capped so that appending to it cannot overwrite its neighbour.
func decodeInto(buf []byte, off *int, n int, src []byte) ([]byte, bool) {
	dst := buf[*off : *off+n]
	*off += n
	m, ok := decodeB64(dst, src)
	return dst[:m:m], ok
}
