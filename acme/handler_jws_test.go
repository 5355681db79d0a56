package acme

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
)

// rawJWS builds a flattened JWS from parts, for requests a well-behaved
// signer would refuse to make (unaccepted algorithms, weak keys).
func rawJWS(t *testing.T, header map[string]any, payload, sig []byte) []byte {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	body, err := json.Marshal(map[string]string{"protected": b64(h), "payload": b64(payload), "signature": b64(sig)})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// weakRSAJWK is the JWK of a 1024-bit RSA modulus: below the 2048 bits
// jws.CheckKey demands.
func weakRSAJWK(t *testing.T) map[string]string {
	t.Helper()
	n := make([]byte, 128)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	n[0] |= 0x80
	return map[string]string{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"}
}

// TestHandlerDirectory covers the unauthenticated resources: directory
// (RFC 8555 §7.1.1), newNonce (§7.2), and the answers to unknown routes
// and wrong methods.
func TestHandlerDirectory(t *testing.T) {
	runCases(t, []hcase{
		{name: "ok/directory", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/acme/directory", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				d := decode[directoryJSON](t, r)
				want := map[string]string{
					"newNonce": d.NewNonce, "newAccount": d.NewAccount, "newOrder": d.NewOrder,
					"revokeCert": d.RevokeCert, "keyChange": d.KeyChange, "renewalInfo": d.RenewalInfo, "newAuthz": d.NewAuthz,
				}
				paths := map[string]string{
					"newNonce": "/acme/new-nonce", "newAccount": "/acme/new-account", "newOrder": "/acme/new-order",
					"revokeCert": "/acme/revoke-cert", "keyChange": "/acme/key-change", "renewalInfo": "/acme/renewal-info",
					"newAuthz": "/acme/new-authz",
				}
				for k, got := range want {
					if got != testBase+paths[k] {
						t.Errorf("%s = %q, want %q", k, got, testBase+paths[k])
					}
				}
				if d.Meta.ExternalAccountRequired || d.Meta.TermsOfService != "" {
					t.Errorf("meta %+v: nothing configured, nothing required", d.Meta)
				}
				if _, ok := d.Meta.Profiles["default"]; !ok {
					t.Errorf("meta.profiles %v lacks the default profile", d.Meta.Profiles)
				}
				if !strings.Contains(string(r.body), `"meta":{`) {
					t.Errorf("directory has no meta object: %s", r.body)
				}
			}},
		{name: "ok/directory-meta", status: http.StatusOK,
			opts: []func(*Config){func(c *Config) {
				c.TermsOfService, c.EABRequired, c.Website = "https://acme.test/tos", true, "https://certmint.test"
			}},
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/acme/directory", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				m := decode[directoryJSON](t, r).Meta
				if !m.ExternalAccountRequired || m.TermsOfService != "https://acme.test/tos" || m.Website != "https://certmint.test" {
					t.Errorf("meta %+v", m)
				}
			}},
		{name: "ok/new-nonce-head", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodHead, "/acme/new-nonce", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				if cc := r.h.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store (RFC 8555 §7.2)", cc)
				}
				if len(r.body) != 0 {
					t.Errorf("HEAD answer has a body: %q", r.body)
				}
			}},
		{name: "ok/new-nonce-get", status: http.StatusNoContent,
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/acme/new-nonce", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				if cc := r.h.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store (RFC 8555 §7.2)", cc)
				}
			}},
		{name: "ok/root-pem", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/roots/root.pem", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				if string(r.body) != string(e.ca.RootPEM()) {
					t.Errorf("root.pem is not the CA's root")
				}
			}},
		{name: "fail/unknown-route", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/acme/no-such-thing", "", nil) }},
		{name: "fail/unknown-route-post", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.do(t, http.MethodPost, "/nowhere", "application/jose+json", []byte("{}"))
			}},
		{name: "fail/get-on-post-resource", status: http.StatusMethodNotAllowed, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, "/acme/new-order", "", nil) },
			check: func(t *testing.T, e *env, r *resp) {
				if a := r.h.Get("Allow"); a != http.MethodPost {
					t.Errorf("Allow %q, want POST", a)
				}
			}},
		{name: "fail/put-on-account", status: http.StatusMethodNotAllowed, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.do(t, http.MethodPut, "/acme/account/x", "application/jose+json", nil)
			}},
	})
}

// TestHandlerJWS covers the request checks every POST passes through
// (RFC 8555 §6.2-§6.5), on newOrder (kid) and newAccount (jwk).
func TestHandlerJWS(t *testing.T) {
	order := map[string]any{"identifiers": idents("a.test")}
	const orderPath = "/acme/new-order"
	runCases(t, []hcase{
		{name: "ok/kid-request", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), orderPath, order) }},
		{name: "fail/content-type", status: http.StatusUnsupportedMediaType, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.do(t, http.MethodPost, orderPath, "application/json", e.sign(t, a.key, a.kid, orderPath, order))
			}},
		{name: "fail/body-too-large", status: http.StatusRequestEntityTooLarge, problem: "malformed",
			opts: []func(*Config){func(c *Config) { c.MaxBody = 512 }},
			run: func(t *testing.T, e *env) *resp {
				return e.postJWK(t, newKey(t), "/acme/new-account", map[string]any{"contact": []string{"mailto:" + strings.Repeat("a", 600) + "@x.test"}})
			}},
		{name: "fail/empty-body", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.postBody(t, orderPath, nil) }},
		{name: "fail/not-json", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.postBody(t, orderPath, []byte("not a JWS")) }},
		{name: "fail/compact-serialization", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				var f map[string]string
				a := e.register(t)
				_ = json.Unmarshal(e.sign(t, a.key, a.kid, orderPath, order), &f)
				return e.postBody(t, orderPath, []byte(`"`+f["protected"]+"."+f["payload"]+"."+f["signature"]+`"`))
			}},
		{name: "fail/unprotected-header", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				var f map[string]any
				a := e.register(t)
				_ = json.Unmarshal(e.sign(t, a.key, a.kid, orderPath, order), &f)
				f["header"] = map[string]string{"kid": a.kid}
				b, _ := json.Marshal(f)
				return e.postBody(t, orderPath, b)
			}},
		{name: "fail/no-nonce", status: http.StatusBadRequest, problem: "badNonce", run: orderWithNonce("")},
		{name: "fail/forged-nonce", status: http.StatusBadRequest, problem: "badNonce", run: orderWithNonce(strings.Repeat("A", 43))},
		{name: "fail/replayed-nonce", status: http.StatusBadRequest, problem: "badNonce",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				body := e.sign(t, a.key, a.kid, orderPath, order)
				e.wantStatus(t, e.postBody(t, orderPath, body), http.StatusCreated)
				return e.postBody(t, orderPath, body)
			}},
		{name: "fail/expired-nonce", status: http.StatusBadRequest, problem: "badNonce",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				body := e.sign(t, a.key, a.kid, orderPath, order)
				e.clock.Advance(2 * time.Hour) // past the 1h default lifetime
				return e.postBody(t, orderPath, body)
			}},
		{name: "ok/retry-with-nonce-of-bad-nonce-answer", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				// RFC 8555 §6.5: the badNonce answer's Replay-Nonce is good
				// for the retry.
				a := e.register(t)
				body, err := jws.Sign(a.key, "", jws.Header{KID: a.kid, Nonce: "bogus", URL: testBase + orderPath}, payloadBytes(t, order))
				if err != nil {
					t.Fatal(err)
				}
				r := e.postBody(t, orderPath, body)
				if p := decode[Problem](t, r); r.code != http.StatusBadRequest || p.Type != ProblemNS+"badNonce" {
					t.Fatalf("first answer %d %s, want badNonce", r.code, r.body)
				}
				body, err = jws.Sign(a.key, "", jws.Header{KID: a.kid, Nonce: r.h.Get("Replay-Nonce"), URL: testBase + orderPath}, payloadBytes(t, order))
				if err != nil {
					t.Fatal(err)
				}
				return e.postBody(t, orderPath, body)
			}},
		{name: "fail/alg-none", status: http.StatusBadRequest, problem: "badSignatureAlgorithm", run: orderWithAlg("none", []byte{0}), check: wantAlgorithms},
		{name: "fail/alg-hs256", status: http.StatusBadRequest, problem: "badSignatureAlgorithm", run: orderWithAlg("HS256", make([]byte, 32)), check: wantAlgorithms},
		{name: "fail/alg-es256k", status: http.StatusBadRequest, problem: "badSignatureAlgorithm", run: orderWithAlg("ES256K", make([]byte, 64)), check: wantAlgorithms},
		{name: "fail/weak-rsa-key", status: http.StatusBadRequest, problem: "badPublicKey",
			run: func(t *testing.T, e *env) *resp {
				return e.postBody(t, "/acme/new-account", rawJWS(t, map[string]any{"alg": "RS256", "jwk": weakRSAJWK(t), "nonce": e.srv.nonces.New(), "url": testBase + "/acme/new-account"}, []byte("{}"), make([]byte, 128)))
			}},
		{name: "fail/bad-signature", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.postBody(t, orderPath, e.sign(t, newKey(t), a.kid, orderPath, order))
			}},
		{name: "fail/url-mismatch", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.postBody(t, orderPath, e.sign(t, a.key, a.kid, "/acme/new-authz", order))
			}},
		{name: "fail/unknown-kid", status: http.StatusBadRequest, problem: "accountDoesNotExist",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, &account{key: newKey(t), kid: testBase + "/acme/account/nobody"}, orderPath, order)
			}},
		{name: "fail/foreign-kid", status: http.StatusBadRequest, problem: "accountDoesNotExist",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				a.kid = "https://elsewhere.test/acme/account/" + a.id
				return e.post(t, a, orderPath, order)
			}},
		{name: "fail/deactivated-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.wantStatus(t, e.post(t, a, "/acme/account/"+a.id, map[string]string{"status": "deactivated"}), http.StatusOK)
				return e.post(t, a, orderPath, order)
			}},
		{name: "fail/jwk-where-kid-needed", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.postJWK(t, newKey(t), orderPath, order) }},
		{name: "fail/kid-on-new-account", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.post(t, a, "/acme/new-account", map[string]any{})
			}},
		{name: "fail/store-unavailable", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				body := e.sign(t, a.key, a.kid, orderPath, order)
				e.store.failNext = fmt.Errorf("get account: %w", ErrUnavailable)
				return e.postBody(t, orderPath, body)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if r.h.Get("Retry-After") == "" {
					t.Errorf("database-down answer has no Retry-After")
				}
			}},
	})
}

// orderWithNonce sends a newOrder of a new account with the given nonce
// ("" leaves the nonce out).
func orderWithNonce(nonce string) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a := e.register(t)
		body, err := jws.Sign(a.key, "", jws.Header{KID: a.kid, Nonce: nonce, URL: testBase + newOrderPath}, payloadBytes(t, orderOf("a.test")))
		if err != nil {
			t.Fatal(err)
		}
		return e.postBody(t, newOrderPath, body)
	}
}

// orderWithAlg sends a newOrder of a new account that claims algorithm alg,
// with a signature of the given bytes.
func orderWithAlg(alg string, sig []byte) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a := e.register(t)
		h := map[string]any{"alg": alg, "kid": a.kid, "nonce": e.srv.nonces.New(), "url": testBase + newOrderPath}
		return e.postBody(t, newOrderPath, rawJWS(t, h, payloadBytes(t, orderOf("a.test")), sig))
	}
}

// wantAlgorithms checks that badSignatureAlgorithm lists the accepted
// algorithms (RFC 8555 §6.2).
func wantAlgorithms(t *testing.T, _ *env, r *resp) {
	t.Helper()
	p := decode[Problem](t, r)
	if !slices.Equal(p.Algorithms, jws.Algorithms) {
		t.Errorf("algorithms %v, want %v", p.Algorithms, jws.Algorithms)
	}
}
