package jws

import (
	"encoding/json"
	"fmt"
)

// parseHeader decodes and checks the protected header of an ACME JWS
// (RFC 8555 §6.2). The algorithm is checked before anything about the key,
// so that a client using an unsupported algorithm learns that first.
func parseHeader(hdr []byte, opts ParseOptions) (Header, error) {
	var h Header
	if !json.Valid(hdr) {
		return h, fmt.Errorf("%w: protected header is not valid JSON", ErrMalformed)
	}
	s, ok := newObjScanner(hdr)
	if !ok {
		return h, fmt.Errorf("%w: protected header is not a JSON object", ErrMalformed)
	}
	// hs backs the string fields of h: one allocation instead of one each.
	hs := string(hdr)
	const (
		seenAlg = 1 << iota
		seenNonce
		seenURL
		seenKID
		seenJWK
		seenB64
	)
	var seen int
	var alg, jwk []byte
	for {
		rawName, vs, ve, ok := s.next()
		if !ok {
			break
		}
		name := memberName(rawName)
		var bit int
		var dst *string
		switch string(name) {
		case "alg":
			bit = seenAlg
		case "nonce":
			bit, dst = seenNonce, &h.Nonce
		case "url":
			bit, dst = seenURL, &h.URL
		case "kid":
			bit, dst = seenKID, &h.KID
		case "jwk":
			bit = seenJWK
		case "b64":
			// RFC 7797 unencoded payloads are not part of ACME.
			bit = seenB64
			if string(hdr[vs:ve]) != "true" {
				return h, fmt.Errorf("%w: unencoded payload (b64) is not supported", ErrMalformed)
			}
		case "crit":
			// RFC 7515 §4.1.11: extensions listed in crit must be understood;
			// ACME defines none.
			return h, fmt.Errorf("%w: crit header parameter is not supported", ErrMalformed)
		default:
			continue // RFC 7515 §4: unknown parameters are ignored
		}
		if seen&bit != 0 {
			return h, fmt.Errorf("%w: duplicate header parameter %q", ErrMalformed, name)
		}
		seen |= bit
		switch bit {
		case seenB64:
			continue
		case seenJWK:
			if hdr[vs] != '{' {
				return h, fmt.Errorf("%w: jwk header parameter is not a JSON object", ErrMalformed)
			}
			jwk = hdr[vs:ve]
			continue
		}
		v, escaped, ok := stringValue(hdr[vs:ve])
		if !ok {
			return h, fmt.Errorf("%w: header parameter %q is not a string", ErrMalformed, name)
		}
		if bit == seenAlg {
			alg = v
			continue
		}
		if escaped {
			*dst = string(v)
		} else {
			*dst = hs[vs+1 : ve-1]
		}
	}

	if seen&seenAlg == 0 {
		return h, fmt.Errorf("%w: protected header has no alg", ErrMalformed)
	}
	var err error
	if h.Alg, err = lookupAlg(alg, opts.AllowHMAC); err != nil {
		return h, err
	}
	hmacAlg := isHMAC(h.Alg)
	switch {
	case seen&seenJWK != 0 && seen&seenKID != 0:
		return h, fmt.Errorf("%w: protected header has both jwk and kid", ErrMalformed)
	case seen&(seenJWK|seenKID) == 0:
		return h, fmt.Errorf("%w: protected header has neither jwk nor kid", ErrMalformed)
	case seen&seenKID != 0 && h.KID == "":
		return h, fmt.Errorf("%w: kid is empty", ErrMalformed)
	case hmacAlg && seen&seenJWK != 0:
		return h, fmt.Errorf("%w: a MAC-based JWS must identify its key with kid (RFC 8555 §7.3.4)", ErrMalformed)
	}
	if h.URL == "" {
		return h, fmt.Errorf("%w: protected header has no url (RFC 8555 §6.4)", ErrMalformed)
	}
	if opts.RequireNonce && h.Nonce == "" {
		return h, fmt.Errorf("%w: protected header has no nonce (RFC 8555 §6.5)", ErrMalformed)
	}
	if opts.ForbidNonce && seen&seenNonce != 0 {
		return h, fmt.Errorf("%w: inner JWS must not have a nonce (RFC 8555 §7.3.4, §7.3.5)", ErrMalformed)
	}
	if jwk != nil {
		k, err := ParseJWK(jwk)
		if err != nil {
			return h, err
		}
		if err := CheckKey(k.Key); err != nil {
			return h, err
		}
		if err := checkAlgKey(h.Alg, k.Key); err != nil {
			return h, err
		}
		h.JWK = k
	}
	return h, nil
}

// lookupAlg maps alg to its constant, so the header does not keep a copy.
func lookupAlg(alg []byte, allowHMAC bool) (string, error) {
	switch string(alg) {
	case RS256:
		return RS256, nil
	case PS256:
		return PS256, nil
	case ES256:
		return ES256, nil
	case ES384:
		return ES384, nil
	case ES512:
		return ES512, nil
	case EdDSA:
		return EdDSA, nil
	case HS256, HS384, HS512:
		if allowHMAC {
			return string(alg), nil
		}
		return "", fmt.Errorf("%w: MAC-based algorithm %s is only allowed for external account binding", ErrBadAlgorithm, alg)
	case "none":
		return "", fmt.Errorf("%w: alg none is not allowed (RFC 8555 §6.2)", ErrBadAlgorithm)
	}
	return "", fmt.Errorf("%w: algorithm %q is not supported", ErrBadAlgorithm, clip(alg))
}

func isHMAC(alg string) bool { return alg == HS256 || alg == HS384 || alg == HS512 }
