package jws

import (
	"encoding/json"
	"errors"
)

// CheckAlgorithm reports, with an error wrapping ErrBadAlgorithm, a flattened
// JWS body whose protected header names an algorithm that is not accepted
// ("none", a MAC unless opts.AllowHMAC, or anything unknown), and nil for
// anything else, including a body too broken to tell.
//
// RFC 8555 §6.2 has the server reject such a JWS with badSignatureAlgorithm;
// a client that signs with the wrong algorithm learns that first, whatever
// else is wrong with its request (a missing signature, a bad header, the
// content type). Parse calls it on its error path, so a well-formed request
// pays nothing for it.
func CheckAlgorithm(body []byte, opts ParseOptions) error {
	if !json.Valid(body) {
		return nil
	}
	s, ok := newObjScanner(body)
	if !ok {
		return nil
	}
	var prot []byte
	for {
		rawName, vs, ve, ok := s.next()
		if !ok {
			break
		}
		if string(memberName(rawName)) == "protected" {
			if prot, _, ok = stringValue(body[vs:ve]); !ok {
				return nil
			}
		}
	}
	hdr := make([]byte, b64.DecodedLen(len(prot)))
	n, ok := decodeB64(hdr, prot)
	if !ok || !json.Valid(hdr[:n]) {
		return nil
	}
	hs, ok := newObjScanner(hdr[:n])
	if !ok {
		return nil
	}
	for {
		rawName, vs, ve, ok := hs.next()
		if !ok {
			return nil
		}
		if string(memberName(rawName)) != "alg" {
			continue
		}
		alg, _, ok := stringValue(hdr[vs:ve])
		if !ok {
			return nil
		}
		if _, err := lookupAlg(alg, opts.AllowHMAC); err != nil {
			return err
		}
		// The first "alg" decides; a duplicate is malformed anyway.
		return nil
	}
}

// algFirst replaces err by the algorithm's rejection when body has an
// unaccepted algorithm (see CheckAlgorithm).
func algFirst(body []byte, opts ParseOptions, err error) error {
	if err == nil || errors.Is(err, ErrBadAlgorithm) {
		return err
	}
	if aerr := CheckAlgorithm(body, opts); aerr != nil {
		return aerr
	}
	return err
}
