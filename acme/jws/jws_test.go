package jws

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var nonceOpts = ParseOptions{RequireNonce: true}

func TestSignParseVerify(t *testing.T) {
	k := keysOnce()
	cases := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"RS256", k.rsa2048, RS256},
		{"PS256", k.rsa2048, PS256},
		{"ES256", k.p256, ES256},
		{"ES384", k.p384, ES384},
		{"ES512", k.p521, ES512},
		{"EdDSA", k.ed, EdDSA},
	}
	for _, tc := range cases {
		payload := []byte(`{"termsOfServiceAgreed":true}`)
		t.Run("ok/"+tc.name+"/jwk", func(t *testing.T) {
			body, err := Sign(tc.key, tc.alg, Header{Nonce: "n0nce", URL: testURL}, payload)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(body, nonceOpts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			h := m.Header
			if h.Alg != tc.alg || h.Nonce != "n0nce" || h.URL != testURL || h.KID != "" || h.JWK == nil {
				t.Fatalf("header = %+v", h)
			}
			if !bytes.Equal(m.Payload, payload) {
				t.Fatalf("payload = %q", m.Payload)
			}
			if err := m.Verify(h.JWK.Key); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if want, _ := Thumbprint(tc.key.Public()); h.JWK.Thumbprint() != want {
				t.Fatalf("thumbprint of embedded jwk differs from the key's")
			}
		})
		t.Run("ok/"+tc.name+"/kid", func(t *testing.T) {
			kid := "https://ca.example/acme/acct/42"
			body, err := Sign(tc.key, tc.alg, Header{Nonce: "n", URL: testURL, KID: kid}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(body, nonceOpts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Header.KID != kid || m.Header.JWK != nil || !m.PostAsGet() || len(m.Payload) != 0 {
				t.Fatalf("message = %+v", m)
			}
			if err := m.Verify(tc.key.Public()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestParseReject covers requests that Parse must refuse, with the error
// class the ACME layer turns into a problem type.
func TestParseReject(t *testing.T) {
	k := keysOnce()
	p256 := jwkJSON(k.p256.Public())
	hdr := func(members string) string { return "{" + members + `,"nonce":"n","url":"` + testURL + `"}` }
	valid := signRaw(t, k.p256, ES256, hdr(`"alg":"ES256","kid":"acct"`), "{}")
	fakeSig := b64.EncodeToString(make([]byte, 64))
	unsigned := func(header string) []byte {
		return flat(b64.EncodeToString([]byte(header)), "e30", fakeSig)
	}
	cases := []struct {
		name string
		body []byte
		opts ParseOptions
		want error
	}{
		{"fail/alg-none", unsigned(hdr(`"alg":"none","kid":"acct"`)), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-HS256", unsigned(hdr(`"alg":"HS256","kid":"acct"`)), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-RS1", unsigned(hdr(`"alg":"RS1","kid":"acct"`)), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-unknown", unsigned(hdr(`"alg":"XX999","kid":"acct"`)), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-before-key", unsigned(hdr(`"alg":"none","jwk":{"kty":"EC","crv":"P-224"}`)), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-missing", unsigned(hdr(`"kid":"acct"`)), nonceOpts, ErrMalformed},
		{"fail/alg-wrong-case", unsigned(hdr(`"Alg":"ES256","kid":"acct"`)), nonceOpts, ErrMalformed},
		{"fail/alg-not-string", unsigned(hdr(`"alg":256,"kid":"acct"`)), nonceOpts, ErrMalformed},
		{"fail/alg-duplicate", unsigned(hdr(`"alg":"ES256","alg":"none","kid":"acct"`)), nonceOpts, ErrMalformed},
		{"fail/key-rsa-1024", signRaw(t, k.rsa1024, RS256, hdr(`"alg":"RS256","jwk":`+jwkJSON(k.rsa1024.Public())), "{}"), nonceOpts, ErrBadKey},
		{"fail/key-p224", unsigned(hdr(`"alg":"ES256","jwk":{"kty":"EC","crv":"P-224","x":"AAAA","y":"AAAA"}`)), nonceOpts, ErrBadKey},
		{"fail/key-oct", unsigned(hdr(`"alg":"ES256","jwk":{"kty":"oct"}`)), nonceOpts, ErrBadKey},
		{"fail/key-private-d", unsigned(hdr(`"alg":"ES256","jwk":` + strings.TrimSuffix(p256, "}") + `,"d":"AAAA"}`)), nonceOpts, ErrMalformed},
		{"fail/alg-key-mismatch-ES256-P384", signRaw(t, k.p384, ES384, hdr(`"alg":"ES256","jwk":`+jwkJSON(k.p384.Public())), "{}"), nonceOpts, ErrBadAlgorithm},
		{"fail/alg-key-mismatch-RS256-EC", unsigned(hdr(`"alg":"RS256","jwk":` + p256)), nonceOpts, ErrBadAlgorithm},
		{"fail/jwk-and-kid", unsigned(hdr(`"alg":"ES256","kid":"acct","jwk":` + p256)), nonceOpts, ErrMalformed},
		{"fail/neither-jwk-nor-kid", unsigned(hdr(`"alg":"ES256"`)), nonceOpts, ErrMalformed},
		{"fail/kid-empty", unsigned(hdr(`"alg":"ES256","kid":""`)), nonceOpts, ErrMalformed},
		{"fail/jwk-not-object", unsigned(hdr(`"alg":"ES256","jwk":"x"`)), nonceOpts, ErrMalformed},
		{"fail/url-missing", unsigned(`{"alg":"ES256","kid":"acct","nonce":"n"}`), nonceOpts, ErrMalformed},
		{"fail/nonce-missing", unsigned(`{"alg":"ES256","kid":"acct","url":"u"}`), nonceOpts, ErrMalformed},
		{"fail/nonce-forbidden", unsigned(hdr(`"alg":"ES256","kid":"acct"`)), ParseOptions{ForbidNonce: true}, ErrMalformed},
		{"fail/crit", unsigned(hdr(`"alg":"ES256","kid":"acct","crit":["b64"]`)), nonceOpts, ErrMalformed},
		{"fail/b64-false", unsigned(hdr(`"alg":"ES256","kid":"acct","b64":false`)), nonceOpts, ErrMalformed},
		{"fail/header-not-json", unsigned(`{"alg":`), nonceOpts, ErrMalformed},
		{"fail/header-array", unsigned(`["alg"]`), nonceOpts, ErrMalformed},
		{"fail/compact", []byte("eyJhbGciOiJFUzI1NiJ9.e30." + fakeSig), nonceOpts, ErrMalformed},
		{"fail/general", editBody(t, valid, func(m map[string]any) {
			m["signatures"] = []any{map[string]any{"protected": m["protected"], "signature": m["signature"]}}
			delete(m, "protected")
			delete(m, "signature")
		}), nonceOpts, ErrMalformed},
		{"fail/unprotected-header", editBody(t, valid, func(m map[string]any) { m["header"] = map[string]any{} }), nonceOpts, ErrMalformed},
		{"fail/protected-missing", editBody(t, valid, func(m map[string]any) { delete(m, "protected") }), nonceOpts, ErrMalformed},
		{"fail/payload-missing", editBody(t, valid, func(m map[string]any) { delete(m, "payload") }), nonceOpts, ErrMalformed},
		{"fail/signature-missing", editBody(t, valid, func(m map[string]any) { delete(m, "signature") }), nonceOpts, ErrMalformed},
		{"fail/payload-not-string", editBody(t, valid, func(m map[string]any) { m["payload"] = map[string]any{} }), nonceOpts, ErrMalformed},
		{"fail/duplicate-payload", bytes.Replace(valid, []byte(`"payload":`), []byte(`"payload":"","payload":`), 1), nonceOpts, ErrMalformed},
		{"fail/b64-padding", editBody(t, valid, func(m map[string]any) { m["payload"] = "e30=" }), nonceOpts, ErrMalformed},
		{"fail/b64-std-alphabet", editBody(t, valid, func(m map[string]any) { m["signature"] = strings.Repeat("+/", 43) }), nonceOpts, ErrMalformed},
		{"fail/b64-newline", editBody(t, valid, func(m map[string]any) { m["payload"] = "e3\n0" }), nonceOpts, ErrMalformed},
		{"fail/b64-trailing-bits", editBody(t, valid, func(m map[string]any) { m["payload"] = "e31" }), nonceOpts, ErrMalformed},
		{"fail/body-not-json", []byte("{"), nonceOpts, ErrMalformed},
		{"fail/body-empty", nil, nonceOpts, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.body, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error = %v, want %v (message %+v)", err, tc.want, m)
			}
			t.Logf("detail: %v", err)
		})
	}
}

func TestParseAccepts(t *testing.T) {
	k := keysOnce()
	cases := []struct {
		name, header string
	}{
		{"ok/unknown-members-ignored", `{"alg":"ES256","kid":"acct","nonce":"n","url":"u","typ":"JWT","x-extra":{"a":[1,"]}"]}}`},
		{"ok/b64-true", `{"alg":"ES256","kid":"acct","nonce":"n","url":"u","b64":true}`},
		{"ok/escaped-strings", `{"\u0061lg":"ES256","kid":"acc\u0074","nonce":"n","url":"u"}`},
		{"ok/whitespace", " {\n\t\"alg\" : \"ES256\" ,\"kid\":\"acct\", \"nonce\":\"n\",\"url\":\"u\" }\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := signRaw(t, k.p256, ES256, tc.header, "")
			m, err := Parse(body, nonceOpts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Header.KID != "acct" || m.Header.URL != "u" || m.Header.Alg != ES256 {
				t.Fatalf("header = %+v", m.Header)
			}
			if err := m.Verify(k.p256.Public()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
	t.Run("ok/outer-unknown-member-and-space", func(t *testing.T) {
		body := signRaw(t, k.p256, ES256, `{"alg":"ES256","kid":"acct","nonce":"n","url":"u"}`, "{}")
		body = append([]byte(` {"x":[null,true,1.5e3], `), body[1:]...)
		if _, err := Parse(body, nonceOpts); err != nil {
			t.Fatalf("Parse: %v", err)
		}
	})
}

func TestVerifyReject(t *testing.T) {
	k := keysOnce()
	opts := ParseOptions{}
	es256, _ := Sign(k.p256, ES256, Header{URL: testURL, KID: "acct"}, []byte(`{"a":1}`))
	rs256, _ := Sign(k.rsa2048, RS256, Header{URL: testURL, KID: "acct"}, []byte(`{"a":1}`))
	cases := []struct {
		name string
		body []byte
		key  crypto.PublicKey
		want error
	}{
		{"fail/tampered-payload", editBody(t, es256, func(m map[string]any) { m["payload"] = "eyJhIjoyfQ" }), k.p256.Public(), ErrBadSignature},
		{"fail/tampered-signature", editBody(t, es256, func(m map[string]any) {
			s, _ := b64.DecodeString(m["signature"].(string))
			s[10] ^= 1
			m["signature"] = b64.EncodeToString(s)
		}), k.p256.Public(), ErrBadSignature},
		{"fail/ecdsa-sig-too-short", editBody(t, es256, func(m map[string]any) {
			m["signature"] = b64.EncodeToString(make([]byte, 63))
		}), k.p256.Public(), ErrBadSignature},
		{"fail/ecdsa-sig-der", editBody(t, es256, func(m map[string]any) {
			m["signature"] = b64.EncodeToString(make([]byte, 72))
		}), k.p256.Public(), ErrBadSignature},
		{"fail/ecdsa-sig-zero", editBody(t, es256, func(m map[string]any) {
			m["signature"] = b64.EncodeToString(make([]byte, 64))
		}), k.p256.Public(), ErrBadSignature},
		{"fail/other-key", es256, mustKey(t, k), ErrBadSignature},
		{"fail/ES256-with-P384-key", es256, k.p384.Public(), ErrBadAlgorithm},
		{"fail/RS256-with-EC-key", rs256, k.p256.Public(), ErrBadAlgorithm},
		{"fail/ES256-with-nil-key", es256, nil, ErrBadAlgorithm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.body, opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := m.Verify(tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
}

// mustKey returns a P-256 public key other than k.p256: the RFC 7515
// Appendix A.3 example key.
func mustKey(t *testing.T, _ *testKeys) crypto.PublicKey {
	t.Helper()
	other, err := ParseJWK([]byte(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`))
	if err != nil {
		t.Fatal(err)
	}
	return other.Key
}

// TestEAB covers the external account binding inner JWS (RFC 8555 §7.3.4).
func TestEAB(t *testing.T) {
	k := keysOnce()
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	acctJWK := jwkJSON(k.p256.Public())
	eabOpts := ParseOptions{AllowHMAC: true, ForbidNonce: true}
	body, err := SignHMAC(hmacKey, "eab-kid-1", testURL, []byte(acctJWK))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ok/HS256", func(t *testing.T) {
		m, err := Parse(body, eabOpts)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if m.Header.Alg != HS256 || m.Header.KID != "eab-kid-1" || m.Header.URL != testURL {
			t.Fatalf("header = %+v", m.Header)
		}
		if err := m.VerifyHMAC(hmacKey); err != nil {
			t.Fatalf("VerifyHMAC: %v", err)
		}
		p, err := ParseJWK(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := Thumbprint(p.Key)
		want, _ := Thumbprint(k.p256.Public())
		other, _ := Thumbprint(k.p384.Public())
		if got != want || got == other {
			t.Fatal("the payload is not the account's JWK")
		}
	})
	t.Run("fail/wrong-mac-key", func(t *testing.T) {
		m, err := Parse(body, eabOpts)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.VerifyHMAC([]byte("another key")); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("VerifyHMAC = %v", err)
		}
		if err := m.Verify(k.p256.Public()); !errors.Is(err, ErrBadAlgorithm) {
			t.Fatalf("Verify of a MAC JWS = %v", err)
		}
	})
	t.Run("fail/HS256-without-AllowHMAC", func(t *testing.T) {
		if _, err := Parse(body, ParseOptions{}); !errors.Is(err, ErrBadAlgorithm) {
			t.Fatalf("Parse = %v", err)
		}
	})
	t.Run("fail/HS256-with-jwk", func(t *testing.T) {
		b := flat(b64.EncodeToString([]byte(`{"alg":"HS256","jwk":`+acctJWK+`,"url":"u"}`)), "", "AAAA")
		if _, err := Parse(b, eabOpts); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Parse = %v", err)
		}
	})
	t.Run("fail/VerifyHMAC-on-ES256", func(t *testing.T) {
		b, _ := Sign(k.p256, "", Header{URL: "u", KID: "k"}, nil)
		m, err := Parse(b, eabOpts)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.VerifyHMAC(hmacKey); !errors.Is(err, ErrBadAlgorithm) {
			t.Fatalf("VerifyHMAC = %v", err)
		}
	})
}

// TestErrorDetail checks that details name the problem and keep the
// sentinel's text, since they are sent to clients.
func TestErrorDetail(t *testing.T) {
	_, err := Parse(flat(b64.EncodeToString([]byte(`{"alg":"ES256","kid":"a","jwk":{},"url":"u"}`)), "", "AAAA"), ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "both jwk and kid") || !strings.HasPrefix(err.Error(), ErrMalformed.Error()) {
		t.Fatalf("err = %v", err)
	}
	long := strings.Repeat("A", 1000)
	_, err = Parse(flat(b64.EncodeToString(fmt.Appendf(nil, `{"alg":%q,"kid":"a","url":"u"}`, long)), "", "AAAA"), ParseOptions{})
	if !errors.Is(err, ErrBadAlgorithm) || len(err.Error()) > 100 {
		t.Fatalf("err = %v", err)
	}
}

func TestPayloadAppendDoesNotClobberSignature(t *testing.T) {
	k := keysOnce()
	body, _ := Sign(k.p256, "", Header{URL: "u", KID: "k"}, []byte("{}"))
	m, err := Parse(body, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.Payload, make([]byte, 64)...)
	if err := m.Verify(k.p256.Public()); err != nil {
		t.Fatalf("Verify after append to Payload: %v", err)
	}
}
