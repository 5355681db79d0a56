package acme

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/validate"
)

// newTestServer is the ACME handler on a real SQLite store, without a CA:
// the requests these tests send never reach issuance.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(context.Background(), Config{}, openTestStore(t), nil, validate.New(validate.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, s *Server, method, path, ctype string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "https://ca.test"+path, strings.NewReader(string(body)))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

// rawHeaderJWS builds a flattened JWS from a protected header and a signature,
// so that the tests can send what no signing library would.
func rawHeaderJWS(hdr map[string]any, sig *string) []byte {
	h, _ := json.Marshal(hdr)
	m := map[string]string{
		"protected": base64.RawURLEncoding.EncodeToString(h),
		"payload":   base64.RawURLEncoding.EncodeToString([]byte("{}")),
	}
	if sig != nil {
		m["signature"] = *sig
	}
	b, _ := json.Marshal(m)
	return b
}

// TestAlgorithmJudgedFirst: an unaccepted alg is badSignatureAlgorithm
// with the accepted algorithms and a fresh nonce, whatever else is wrong
// with the request (RFC 8555 §6.2).
func TestAlgorithmJudgedFirst(t *testing.T) {
	s := newTestServer(t)
	const url = "https://ca.test/acme/new-order"
	hdr := func(alg string, extra map[string]any) map[string]any {
		h := map[string]any{"alg": alg, "nonce": s.nonces.New(), "url": url, "kid": "https://ca.test/acme/account/x"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	empty, junk := "", base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	tests := []struct {
		name  string
		ctype string
		body  []byte
	}{
		{"none/empty-signature", "application/jose+json", rawHeaderJWS(hdr("none", nil), &empty)},
		{"none/no-signature", "application/jose+json", rawHeaderJWS(hdr("none", nil), nil)},
		{"none/no-nonce-no-url", "application/jose+json", rawHeaderJWS(map[string]any{"alg": "none"}, &empty)},
		{"none/wrong-content-type", "application/json", rawHeaderJWS(hdr("none", nil), &empty)},
		{"none/crit", "application/jose+json", rawHeaderJWS(hdr("none", map[string]any{"crit": []string{"x"}}), &empty)},
		{"HS256", "application/jose+json", rawHeaderJWS(hdr("HS256", nil), &junk)},
		{"HS256/jwk-and-kid", "application/jose+json", rawHeaderJWS(hdr("HS256", map[string]any{"jwk": map[string]any{"kty": "oct"}}), &junk)},
		{"unknown", "application/jose+json", rawHeaderJWS(hdr("XS999", nil), &junk)},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, s, http.MethodPost, "/acme/new-order", tc.ctype, tc.body)
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if w.Code != http.StatusBadRequest || p.Type != ProblemNS+"badSignatureAlgorithm" {
				t.Fatalf("got %d %s %q, want 400 badSignatureAlgorithm", w.Code, p.Type, p.Detail)
			}
			if !slices.Equal(p.Algorithms, jws.Algorithms) {
				t.Errorf("algorithms = %v, want %v", p.Algorithms, jws.Algorithms)
			}
			n := w.Header().Get("Replay-Nonce")
			if n == "" || seen[n] {
				t.Fatalf("Replay-Nonce %q: missing or not fresh", n)
			}
			seen[n] = true
			if err := s.nonces.Redeem(context.Background(), n); err != nil {
				t.Errorf("the problem's nonce does not work: %v", err)
			}
		})
	}
	// A supported alg with a broken request stays malformed.
	w := do(t, s, http.MethodPost, "/acme/new-order", "application/jose+json", rawHeaderJWS(hdr("ES256", nil), nil))
	if !strings.Contains(w.Body.String(), ProblemNS+"malformed") {
		t.Errorf("ES256 without signature: %s", w.Body.String())
	}
}

// TestNoncePlacement: Replay-Nonce on POST answers (errors included) and
// on newNonce, nowhere else; Link rel="index" everywhere but on the
// directory (RFC 8555 §6.5, §7.1, §7.2).
func TestNoncePlacement(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		nonce, index bool
	}{
		{http.MethodGet, "/acme/directory", false, false},
		{http.MethodHead, "/acme/new-nonce", true, true},
		{http.MethodGet, "/acme/new-nonce", true, true},
		{http.MethodGet, "/acme/renewal-info/nope", false, true},
		{http.MethodGet, "/acme/new-order", false, true}, // 405
		{http.MethodGet, "/no/such/thing", false, true},
		{http.MethodPost, "/acme/new-order", true, true}, // 415 problem
		{http.MethodPost, "/acme/new-account", true, true},
		{http.MethodPost, "/no/such/thing", true, true},
	} {
		w := do(t, s, tc.method, tc.path, "", nil)
		if got := w.Header().Get("Replay-Nonce") != ""; got != tc.nonce {
			t.Errorf("%s %s (%d): Replay-Nonce present = %v, want %v", tc.method, tc.path, w.Code, got, tc.nonce)
		}
		if got := strings.Contains(strings.Join(w.Header().Values("Link"), ","), `rel="index"`); got != tc.index {
			t.Errorf("%s %s (%d): Link rel=index present = %v, want %v", tc.method, tc.path, w.Code, got, tc.index)
		}
	}
}
