package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/jws"
)

const newAccountPath = "/acme/new-account"

// eabKey stores an EAB key in the fake store and returns it.
func (e *env) eabKey(t *testing.T, id string, mod func(*eab.Key)) *eab.Key {
	t.Helper()
	k := eab.Key{ID: id, HMACKey: []byte("0123456789abcdef0123456789abcdef"), Label: "test"}
	if mod != nil {
		mod(&k)
	}
	e.store.mu.Lock()
	e.store.eabKeys[id] = k
	e.store.mu.Unlock()
	return &k
}

// eabBinding is the externalAccountBinding of RFC 8555 §7.3.4 for the
// account key acctKey, MACed with macKey under kid, for url.
func eabBinding(t *testing.T, acctKey crypto.Signer, macKey []byte, kid, url string) json.RawMessage {
	t.Helper()
	jwk, err := jws.MarshalJWK(acctKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := jws.SignHMAC(macKey, kid, url, jwk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantAccountLocation checks the Location header is the account URL of id, or any
// account URL when id is "".
func wantAccountLocation(t *testing.T, r *resp, id string) {
	t.Helper()
	loc := r.h.Get("Location")
	got, ok := strings.CutPrefix(loc, testBase+"/acme/account/")
	if ok && got != "" && !strings.Contains(got, "/") && (id == "" || got == id) {
		return
	}
	t.Errorf("Location %q, want the account URL of %q", loc, id)
}

func newAccountCase(name string, status int, problem string, payload func(t *testing.T, key crypto.Signer) any, opts ...func(*Config)) hcase {
	return hcase{name: name, status: status, problem: problem, opts: opts,
		run: func(t *testing.T, e *env) *resp {
			key := newKey(t)
			return e.postJWK(t, key, newAccountPath, payload(t, key))
		}}
}

func constPayload(v any) func(*testing.T, crypto.Signer) any {
	return func(*testing.T, crypto.Signer) any { return v }
}

// TestHandlerNewAccount covers newAccount (RFC 8555 §7.3, §7.3.1, §7.3.4).
func TestHandlerNewAccount(t *testing.T) {
	tos := func(c *Config) { c.TermsOfService = "https://acme.test/tos" }
	eabRequired := func(c *Config) { c.EABRequired = true }
	withEAB := func(name string, status int, problem string, mod func(*eab.Key), bind func(t *testing.T, e *env, key crypto.Signer, k *eab.Key) json.RawMessage) hcase {
		return hcase{name: name, status: status, problem: problem, opts: []func(*Config){eabRequired},
			run: func(t *testing.T, e *env) *resp {
				k := e.eabKey(t, "kid-1", mod)
				key := newKey(t)
				return e.postJWK(t, key, newAccountPath, map[string]any{"externalAccountBinding": bind(t, e, key, k)})
			}}
	}
	goodBinding := func(t *testing.T, _ *env, key crypto.Signer, k *eab.Key) json.RawMessage {
		return eabBinding(t, key, k.HMACKey, k.ID, testBase+newAccountPath)
	}
	ed := func(t *testing.T) crypto.Signer {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p384 := func(t *testing.T) crypto.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cases := []hcase{
		{name: "ok/new-account", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				return e.postJWK(t, newKey(t), newAccountPath, map[string]any{"contact": []string{"mailto:ops@example.test"}})
			},
			check: func(t *testing.T, e *env, r *resp) {
				wantAccountLocation(t, r, "")
				a := decode[accountJSON](t, r)
				if a.Status != StatusValid || !slices.Equal(a.Contact, []string{"mailto:ops@example.test"}) ||
					a.Orders != r.h.Get("Location")+"/orders" {
					t.Errorf("account %s", r.body)
				}
				if len(e.store.accounts) != 1 {
					t.Errorf("%d accounts stored, want 1", len(e.store.accounts))
				}
			}},
		{name: "ok/existing-account", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				r := e.postJWK(t, a.key, newAccountPath, map[string]any{})
				wantAccountLocation(t, r, a.id)
				return r
			}},
		{name: "ok/only-return-existing", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				r := e.postJWK(t, a.key, newAccountPath, map[string]any{"onlyReturnExisting": true})
				wantAccountLocation(t, r, a.id)
				return r
			}},
		{name: "ok/ed25519-key", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp { return e.postJWK(t, ed(t), newAccountPath, map[string]any{}) }},
		{name: "ok/p384-key", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp { return e.postJWK(t, p384(t), newAccountPath, map[string]any{}) }},
		{name: "ok/tos-agreed", status: http.StatusCreated, opts: []func(*Config){tos},
			run: func(t *testing.T, e *env) *resp {
				return e.postJWK(t, newKey(t), newAccountPath, map[string]any{"termsOfServiceAgreed": true})
			}},
		newAccountCase("fail/only-return-existing-unknown-key", http.StatusBadRequest, "accountDoesNotExist",
			constPayload(map[string]any{"onlyReturnExisting": true})),
		newAccountCase("fail/contact-not-mailto", http.StatusBadRequest, "unsupportedContact",
			constPayload(map[string]any{"contact": []string{"tel:+15550100"}})),
		newAccountCase("fail/contact-bad-address", http.StatusBadRequest, "invalidContact",
			constPayload(map[string]any{"contact": []string{"mailto:not an address"}})),
		newAccountCase("fail/contact-hfields", http.StatusBadRequest, "invalidContact",
			constPayload(map[string]any{"contact": []string{"mailto:ops@example.test?subject=hi"}})),
		newAccountCase("fail/contact-display-name", http.StatusBadRequest, "invalidContact",
			constPayload(map[string]any{"contact": []string{"mailto:Ops <ops@example.test>"}})),
		newAccountCase("fail/too-many-contacts", http.StatusBadRequest, "invalidContact",
			constPayload(map[string]any{"contact": slices.Repeat([]string{"mailto:ops@example.test"}, 11)})),
		newAccountCase("fail/contact-wrong-type", http.StatusBadRequest, "malformed",
			constPayload(`{"contact":"mailto:ops@example.test"}`)),
		newAccountCase("fail/payload-not-json", http.StatusBadRequest, "malformed", constPayload("{")),
		newAccountCase("fail/post-as-get", http.StatusBadRequest, "malformed", constPayload(nil)),
		{name: "fail/tos-not-agreed", status: http.StatusForbidden, problem: "userActionRequired", opts: []func(*Config){tos},
			run: func(t *testing.T, e *env) *resp { return e.postJWK(t, newKey(t), newAccountPath, map[string]any{}) },
			check: func(t *testing.T, e *env, r *resp) {
				// RFC 8555 §7.3.3: a Link to the terms, and an instance URL
				// a human can visit (§6.7: "Visit the instance URL").
				if !slices.Contains(r.h.Values("Link"), link("https://acme.test/tos", "terms-of-service")) {
					t.Errorf("Link %v lacks rel=terms-of-service", r.h.Values("Link"))
				}
				if p := decode[Problem](t, r); p.Instance != "https://acme.test/tos" {
					t.Errorf("instance %q, want the terms URL", p.Instance)
				}
				if len(e.store.accounts) != 0 {
					t.Errorf("account created without agreement")
				}
			}},
		newAccountCase("fail/eab-required", http.StatusUnauthorized, "externalAccountRequired",
			constPayload(map[string]any{"termsOfServiceAgreed": true}), eabRequired),
		withEAB("ok/eab", http.StatusCreated, "", nil, goodBinding),
		withEAB("ok/eab-reusable-key-used-before", http.StatusCreated, "", func(k *eab.Key) { k.Reusable, k.UsedBy = true, "other" }, goodBinding),
		withEAB("fail/eab-unknown-key", http.StatusForbidden, "unauthorized", nil,
			func(t *testing.T, _ *env, key crypto.Signer, k *eab.Key) json.RawMessage {
				return eabBinding(t, key, k.HMACKey, "no-such-kid", testBase+newAccountPath)
			}),
		withEAB("fail/eab-bad-mac", http.StatusForbidden, "unauthorized", nil,
			func(t *testing.T, _ *env, key crypto.Signer, k *eab.Key) json.RawMessage {
				return eabBinding(t, key, []byte("another secret, another secret!!"), k.ID, testBase+newAccountPath)
			}),
		withEAB("fail/eab-revoked-key", http.StatusForbidden, "unauthorized", func(k *eab.Key) { k.Revoked = true }, goodBinding),
		withEAB("fail/eab-single-use-key-used", http.StatusForbidden, "unauthorized", func(k *eab.Key) { k.UsedBy = "other" }, goodBinding),
		withEAB("fail/eab-wrong-url", http.StatusBadRequest, "malformed", nil,
			func(t *testing.T, _ *env, key crypto.Signer, k *eab.Key) json.RawMessage {
				return eabBinding(t, key, k.HMACKey, k.ID, testBase+"/acme/new-order")
			}),
		withEAB("fail/eab-other-jwk", http.StatusBadRequest, "malformed", nil,
			func(t *testing.T, _ *env, _ crypto.Signer, k *eab.Key) json.RawMessage {
				return eabBinding(t, newKey(t), k.HMACKey, k.ID, testBase+newAccountPath)
			}),
		withEAB("fail/eab-signed-not-maced", http.StatusBadRequest, "malformed", nil,
			func(t *testing.T, _ *env, key crypto.Signer, k *eab.Key) json.RawMessage {
				jwk, _ := jws.MarshalJWK(key.Public())
				b, err := jws.Sign(key, "", jws.Header{KID: k.ID, URL: testBase + newAccountPath}, jwk)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}),
		withEAB("fail/eab-not-a-jws", http.StatusBadRequest, "malformed", nil,
			func(*testing.T, *env, crypto.Signer, *eab.Key) json.RawMessage {
				return json.RawMessage(`{"protected":1}`)
			}),
		{name: "fail/eab-key-bound-meanwhile-is-released-on-failure", status: http.StatusServiceUnavailable, problem: "serverInternal",
			opts: []func(*Config){eabRequired},
			run: func(t *testing.T, e *env) *resp {
				k := e.eabKey(t, "kid-1", nil)
				key := newKey(t)
				body := e.sign(t, key, "", newAccountPath, map[string]any{"externalAccountBinding": eabBinding(t, key, k.HMACKey, k.ID, testBase+newAccountPath)})
				// GetAccountByThumbprint succeeds (not found); CreateAccount fails.
				e.store.failOnce("CreateAccount", fmt.Errorf("insert: %w", ErrUnavailable))
				return e.postBody(t, newAccountPath, body)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if k := e.store.eabKeys["kid-1"]; k.UsedBy != "" {
					t.Errorf("single-use EAB key stays bound to %q after the account was not created", k.UsedBy)
				}
			}},
		{name: "fail/eab-key-bound-by-a-racing-request", status: http.StatusForbidden, problem: "unauthorized",
			opts: []func(*Config){eabRequired},
			run: func(t *testing.T, e *env) *resp {
				k := e.eabKey(t, "kid-1", nil)
				key := newKey(t)
				body := e.sign(t, key, "", newAccountPath, map[string]any{"externalAccountBinding": eabBinding(t, key, k.HMACKey, k.ID, testBase+newAccountPath)})
				e.store.failOnce("BindEABKey", fmt.Errorf("bind: %w", ErrConflict))
				return e.postBody(t, newAccountPath, body)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if len(e.store.accounts) != 0 {
					t.Errorf("an account was created with a key another request bound")
				}
			}},
		{name: "fail/deactivated-account-key", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.wantStatus(t, e.post(t, a, "/acme/account/"+a.id, map[string]string{"status": "deactivated"}), http.StatusOK)
				return e.postJWK(t, a.key, newAccountPath, map[string]any{})
			}},
		{name: "fail/store-unavailable", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				body := e.sign(t, newKey(t), "", newAccountPath, map[string]any{})
				e.store.failNext = fmt.Errorf("lookup: %w", ErrUnavailable)
				return e.postBody(t, newAccountPath, body)
			}},
	}
	runCases(t, cases)
}
