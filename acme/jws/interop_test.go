package jws

import (
	"crypto"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

type staticNonce string

func (n staticNonce) Nonce() (string, error) { return string(n), nil }

// TestInteropGoJose checks requests as lego builds them: lego signs with
// go-jose, embedding the jwk for newAccount and using kid afterwards.
func TestInteropGoJose(t *testing.T) {
	k := keysOnce()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{
		{"RS256", k.rsa2048, jose.RS256},
		{"PS256", k.rsa2048, jose.PS256},
		{"ES256", k.p256, jose.ES256},
		{"ES384", k.p384, jose.ES384},
		{"ES512", k.p521, jose.ES512},
		{"EdDSA", k.ed, jose.EdDSA},
	} {
		for _, kid := range []string{"", "https://ca.example/acme/acct/7"} {
			name := "ok/go-jose/" + tc.name + "/jwk"
			if kid != "" {
				name = "ok/go-jose/" + tc.name + "/kid"
			}
			t.Run(name, func(t *testing.T) {
				opts := (&jose.SignerOptions{NonceSource: staticNonce("nonce-1"), EmbedJWK: kid == ""}).
					WithHeader("url", testURL)
				var sk any = tc.key
				if kid != "" {
					sk = jose.JSONWebKey{Key: tc.key, KeyID: kid}
				}
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: sk}, opts)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := signer.Sign([]byte(`{"identifiers":[{"type":"dns","value":"a.example"}]}`))
				if err != nil {
					t.Fatal(err)
				}
				m, err := Parse([]byte(obj.FullSerialize()), ParseOptions{RequireNonce: true})
				if err != nil {
					t.Fatalf("Parse: %v\n%s", err, obj.FullSerialize())
				}
				if m.Header.Nonce != "nonce-1" || m.Header.URL != testURL || m.Header.KID != kid || (m.Header.JWK == nil) != (kid != "") {
					t.Fatalf("header = %+v", m.Header)
				}
				if err := m.Verify(tc.key.Public()); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			})
		}
		// The other direction: go-jose verifies what Sign produces.
		t.Run("ok/to-go-jose/"+tc.name, func(t *testing.T) {
			body, err := Sign(tc.key, string(tc.alg), Header{Nonce: "n", URL: testURL}, []byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := jose.ParseSigned(string(body), []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obj.Verify(tc.key.Public()); err != nil {
				t.Fatalf("go-jose Verify: %v", err)
			}
			if tp, _ := Thumbprint(tc.key.Public()); obj.Signatures[0].Protected.JSONWebKey == nil {
				t.Fatal("no embedded jwk")
			} else if jt, _ := obj.Signatures[0].Protected.JSONWebKey.Thumbprint(crypto.SHA256); b64.EncodeToString(jt) != tp {
				t.Fatal("thumbprint differs from go-jose's")
			}
		})
	}
}
