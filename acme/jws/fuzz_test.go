package jws

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error carries one of
// the package's sentinels (the ACME layer maps nothing else), and that a
// parsed message always names exactly one key. Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"","signature":"AAAA"}`))
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, opts := range []ParseOptions{{}, {RequireNonce: true}, {AllowHMAC: true, ForbidNonce: true}} {
			m, err := Parse(body, opts)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadAlgorithm) && !errors.Is(err, ErrBadKey) {
					t.Fatalf("error without a sentinel: %v", err)
				}
				continue
			}
			if (m.Header.JWK == nil) == (m.Header.KID == "") {
				t.Fatalf("want exactly one of jwk and kid: %+v", m.Header)
			}
			if m.Header.URL == "" || (opts.RequireNonce && m.Header.Nonce == "") {
				t.Fatalf("accepted header without url or nonce: %+v", m.Header)
			}
			// Verification of arbitrary input must fail cleanly, not panic.
			if m.Header.JWK != nil {
				_ = m.Verify(m.Header.JWK.Key)
			}
			_ = m.Verify(pub)
			_ = m.VerifyHMAC([]byte("k"))
		}
	})
}
