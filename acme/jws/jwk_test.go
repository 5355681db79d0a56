package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// rfc7638Key is the RSA key of RFC 7638 §3.1, with the optional members the
// RFC shows, which must not affect the thumbprint.
const rfc7638Key = `{
  "kty": "RSA",
  "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e": "AQAB",
  "alg": "RS256",
  "kid": "2011-04-29"
}`

func TestThumbprintRFC7638(t *testing.T) {
	k, err := ParseJWK([]byte(rfc7638Key))
	if err != nil {
		t.Fatal(err)
	}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	if got := k.Thumbprint(); got != want {
		t.Fatalf("Thumbprint() = %s, want %s", got, want)
	}
	if got, err := Thumbprint(k.Key); err != nil || got != want {
		t.Fatalf("Thumbprint(key) = %s, %v", got, err)
	}
	// The canonical form is the RFC 7638 §3.3 example input.
	j, _ := k.MarshalJSON()
	if !strings.HasPrefix(string(j), `{"e":"AQAB","kty":"RSA","n":"0vx7ag`) {
		t.Fatalf("MarshalJSON = %s", j)
	}
}

func TestJWKRoundTrip(t *testing.T) {
	k := keysOnce()
	for _, tc := range []struct {
		name string
		key  crypto.PublicKey
		alg  string
	}{
		{"ok/RSA", k.rsa2048.Public(), RS256},
		{"ok/P-256", k.p256.Public(), ES256},
		{"ok/P-384", k.p384.Public(), ES384},
		{"ok/P-521", k.p521.Public(), ES512},
		{"ok/Ed25519", k.ed.Public(), EdDSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := MarshalJWK(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseJWK(j)
			if err != nil {
				t.Fatalf("parse %s: %v", j, err)
			}
			if k, ok := p.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(tc.key) {
				t.Fatal("round trip changed the key")
			}
			if err := CheckKey(p.Key); err != nil {
				t.Fatal(err)
			}
			if AlgFor(p.Key) != tc.alg {
				t.Fatalf("AlgFor = %q", AlgFor(p.Key))
			}
			if tp := p.Thumbprint(); len(tp) != 43 {
				t.Fatalf("thumbprint %q", tp)
			}
		})
	}
}

func TestParseJWKReject(t *testing.T) {
	k := keysOnce()
	p256 := jwkJSON(k.p256.Public())
	rsaJWK := jwkJSON(k.rsa2048.Public())
	withMember := func(j, m string) string { return strings.TrimSuffix(j, "}") + "," + m + "}" }
	cases := []struct {
		name, jwk string
		want      error
	}{
		{"fail/private-d", withMember(p256, `"d":"AAAA"`), ErrMalformed},
		{"fail/private-rsa-p", withMember(rsaJWK, `"p":"AAAA"`), ErrMalformed},
		{"fail/symmetric-k", `{"kty":"oct","k":"AAAA"}`, ErrMalformed},
		{"fail/kty-missing", `{"crv":"P-256"}`, ErrMalformed},
		{"fail/kty-unknown", `{"kty":"XYZ"}`, ErrBadKey},
		{"fail/crv-P-224", `{"kty":"EC","crv":"P-224","x":"AAAA","y":"AAAA"}`, ErrBadKey},
		{"fail/crv-secp256k1", `{"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA"}`, ErrBadKey},
		{"fail/crv-X25519", `{"kty":"OKP","crv":"X25519","x":"AAAA"}`, ErrBadKey},
		{"fail/crv-Ed448", `{"kty":"OKP","crv":"Ed448","x":"AAAA"}`, ErrBadKey},
		{"fail/ec-short-x", `{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`, ErrMalformed},
		{"fail/ec-not-on-curve", `{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 42) + `E"}`, ErrBadKey},
		{"fail/ec-padded", strings.Replace(p256, `","y"`, `=","y"`, 1), ErrMalformed},
		{"fail/ed25519-short", `{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`, ErrMalformed},
		{"fail/rsa-leading-zero", `{"kty":"RSA","n":"AAEB","e":"AQAB"}`, ErrMalformed},
		{"fail/rsa-no-e", `{"kty":"RSA","n":"AQEB"}`, ErrMalformed},
		{"fail/rsa-huge-e", `{"kty":"RSA","n":"AQEB","e":"AQAAAAAB"}`, ErrBadKey},
		{"fail/member-not-string", `{"kty":"RSA","n":1,"e":"AQAB"}`, ErrMalformed},
		{"fail/duplicate-kty", `{"kty":"RSA","kty":"EC"}`, ErrMalformed},
		{"fail/not-object", `["kty"]`, ErrMalformed},
		{"fail/invalid-json", `{"kty":`, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseJWK([]byte(tc.jwk)); !errors.Is(err, tc.want) {
				t.Fatalf("ParseJWK = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	k := keysOnce()
	n2048 := k.rsa2048.N
	cases := []struct {
		name string
		key  crypto.PublicKey
		ok   bool
	}{
		{"ok/rsa-2048", k.rsa2048.Public(), true},
		{"ok/p256", k.p256.Public(), true},
		{"ok/p384", k.p384.Public(), true},
		{"ok/p521", k.p521.Public(), true},
		{"ok/ed25519", k.ed.Public(), true},
		{"fail/rsa-1024", k.rsa1024.Public(), false},
		{"fail/rsa-too-big", &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 8200), E: 65537}, false},
		{"fail/rsa-e-3", &rsa.PublicKey{N: n2048, E: 3}, false},
		{"fail/rsa-e-even", &rsa.PublicKey{N: n2048, E: 65538}, false},
		{"fail/rsa-nil-n", &rsa.PublicKey{E: 65537}, false},
		{"fail/p224", k.p224.Public(), false},
		{"fail/ecdsa-nil", (*ecdsa.PublicKey)(nil), false},
		{"fail/ed25519-short", ed25519.PublicKey(make([]byte, 31)), false},
		{"fail/unknown-type", "not a key", false},
		{"fail/nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKey(tc.key)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadKey)) {
				t.Fatalf("CheckKey = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
