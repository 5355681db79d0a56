package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// go-pkcs12 writes no friendlyName on the key, so Java's keytool and
// Spring Boot call the key entry "1" and every service must be told that
// alias. setKeyAlias adds a friendlyName attribute (PKCS#9, RFC 2985
// §5.5.1) to the key bag of a PFX made by pkcs12.Modern and recomputes its
// MAC; Java takes an entry's alias from that attribute (RFC 7292 §4.2).

// The PFX structures of RFC 7292 §4, as far as this edit needs them.
type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type macData struct {
	Mac        digestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []bagAttribute `asn1:"set,optional"`
}

type bagAttribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidKeyBag             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidFriendlyName       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	errUnexpectedPFXShape = errors.New("unexpected PKCS#12 structure")
)

// explicit0 wraps DER as the [0] EXPLICIT content of a ContentInfo.
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// setKeyAlias returns pfx with alias as the friendlyName of its key.
func setKeyAlias(pfx []byte, password, alias string) ([]byte, error) {
	name, err := bmpString(alias)
	if err != nil {
		return nil, fmt.Errorf("keystore alias %q: %w", alias, err)
	}
	var p pfxPDU
	if rest, err := asn1.Unmarshal(pfx, &p); err != nil || len(rest) > 0 || !p.AuthSafe.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("%w: %v", errUnexpectedPFXShape, err)
	}
	var authSafe []byte
	if _, err := asn1.Unmarshal(p.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return nil, fmt.Errorf("%w: authSafe: %v", errUnexpectedPFXShape, err)
	}
	var contents []contentInfo
	if _, err := asn1.Unmarshal(authSafe, &contents); err != nil {
		return nil, fmt.Errorf("%w: contents: %v", errUnexpectedPFXShape, err)
	}
	named := 0
	for i, ci := range contents {
		if !ci.ContentType.Equal(oidData) { // the encrypted certificates
			continue
		}
		var raw []byte
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &raw); err != nil {
			return nil, fmt.Errorf("%w: safe contents: %v", errUnexpectedPFXShape, err)
		}
		var bags []safeBag
		if _, err := asn1.Unmarshal(raw, &bags); err != nil {
			return nil, fmt.Errorf("%w: bags: %v", errUnexpectedPFXShape, err)
		}
		for j := range bags {
			if !bags[j].ID.Equal(oidKeyBag) && !bags[j].ID.Equal(oidShroudedKeyBag) {
				continue
			}
			bmp, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: name})
			if err != nil {
				return nil, err
			}
			bags[j].Attributes = append(bags[j].Attributes, bagAttribute{ID: oidFriendlyName,
				Value: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: bmp}})
			named++
		}
		if raw, err = asn1.Marshal(bags); err != nil {
			return nil, err
		}
		octets, err := asn1.Marshal(raw)
		if err != nil {
			return nil, err
		}
		contents[i].Content = explicit0(octets)
	}
	if named != 1 {
		return nil, fmt.Errorf("%w: %d key bags", errUnexpectedPFXShape, named)
	}
	if authSafe, err = asn1.Marshal(contents); err != nil {
		return nil, err
	}
	octets, err := asn1.Marshal(authSafe)
	if err != nil {
		return nil, err
	}
	p.AuthSafe.Content = explicit0(octets)
	// RFC 7292 §5 and Appendix B: the MAC key comes from the password by
	// the PKCS#12 KDF with ID 3; pkcs12.Modern uses HMAC-SHA-256.
	if !p.MacData.Mac.Algorithm.Algorithm.Equal(oidSHA256) {
		return nil, fmt.Errorf("%w: MAC algorithm %v", errUnexpectedPFXShape, p.MacData.Mac.Algorithm.Algorithm)
	}
	pw, err := bmpString(password)
	if err != nil {
		return nil, fmt.Errorf("keystore password: %w", err)
	}
	key := pkcs12MACKey(p.MacData.MacSalt, append(pw, 0, 0), p.MacData.Iterations)
	mac := hmac.New(sha256.New, key)
	mac.Write(authSafe)
	p.MacData.Mac.Digest = mac.Sum(nil)
	return asn1.Marshal(p)
}

// pkcs12MACKey is the RFC 7292 Appendix B.2 KDF with SHA-256 (u = 32,
// v = 64 bytes) and ID 3, for a 32-byte key: one output block, A1 =
// H^iterations(D || S || P), where D is 64 bytes of the ID and S and P are
// the salt and the password repeated to a multiple of 64 bytes.
func pkcs12MACKey(salt, password []byte, iterations int) []byte {
	const v = 64
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		n := v * ((len(b) + v - 1) / v)
		out := make([]byte, 0, n+len(b))
		for len(out) < n {
			out = append(out, b...)
		}
		return out[:n]
	}
	input := make([]byte, v, v+len(salt)+len(password)+2*v)
	for i := range input {
		input[i] = 3
	}
	input = append(append(input, fill(salt)...), fill(password)...)
	sum := sha256.Sum256(input)
	for i := 1; i < iterations; i++ {
		sum = sha256.Sum256(sum[:])
	}
	return sum[:]
}

// bmpString is s in UCS-2, big-endian (RFC 7292 Appendix B.1).
func bmpString(s string) ([]byte, error) {
	out := make([]byte, 0, 2*len(s))
	for _, r := range s {
		if r > 0xffff || (r >= 0xd800 && r < 0xe000) {
			return nil, errors.New("contains a character outside the Basic Multilingual Plane")
		}
		out = append(out, byte(r>>8), byte(r))
	}
	return out, nil
}
