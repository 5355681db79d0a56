package acme

import (
	"crypto"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
)

// TestHandlerAccount covers the account resource: POST-as-GET, contact
// update and deactivation (RFC 8555 §7.3.2, §7.3.6), and the orders list
// (§7.1.2.1).
func TestHandlerAccount(t *testing.T) {
	self := func(payload any) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			a := e.register(t)
			return e.post(t, a, "/acme/account/"+a.id, payload)
		}
	}
	runCases(t, []hcase{
		{name: "ok/post-as-get", status: http.StatusOK, run: self(nil),
			check: func(t *testing.T, e *env, r *resp) {
				wantAccountLocation(t, r, "")
				if a := decode[accountJSON](t, r); a.Status != StatusValid || !a.TermsOfServiceAgreed {
					t.Errorf("account %s", r.body)
				}
			}},
		{name: "ok/update-contact", status: http.StatusOK,
			run: self(map[string]any{"contact": []string{"mailto:new@example.test"}}),
			check: func(t *testing.T, e *env, r *resp) {
				if a := decode[accountJSON](t, r); !slices.Equal(a.Contact, []string{"mailto:new@example.test"}) {
					t.Errorf("answer %s", r.body)
				}
				for _, a := range e.store.accounts {
					if !slices.Equal(a.Contact, []string{"mailto:new@example.test"}) {
						t.Errorf("stored contact %v", a.Contact)
					}
				}
			}},
		{name: "ok/empty-update", status: http.StatusOK, run: self(map[string]any{})},
		{name: "ok/deactivate", status: http.StatusOK, run: self(map[string]any{"status": "deactivated"}),
			check: func(t *testing.T, e *env, r *resp) {
				if a := decode[accountJSON](t, r); a.Status != StatusDeactivated {
					t.Errorf("answer %s", r.body)
				}
				for _, a := range e.store.accounts {
					if a.Status != StatusDeactivated {
						t.Errorf("stored status %s", a.Status)
					}
				}
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				a, b := e.register(t), e.register(t)
				return e.post(t, a, "/acme/account/"+b.id, map[string]any{"status": "deactivated"})
			},
			check: func(t *testing.T, e *env, r *resp) {
				for _, a := range e.store.accounts {
					if a.Status != StatusValid {
						t.Errorf("account %s is %s after another account's request", a.ID, a.Status)
					}
				}
			}},
		{name: "fail/status-not-deactivated", status: http.StatusBadRequest, problem: "malformed",
			run: self(map[string]any{"status": "valid"})},
		{name: "fail/contact-not-mailto", status: http.StatusBadRequest, problem: "unsupportedContact",
			run: self(map[string]any{"contact": []string{"https://example.test"}})},
		{name: "fail/contact-invalid", status: http.StatusBadRequest, problem: "invalidContact",
			run: self(map[string]any{"contact": []string{"mailto:a@b@c"}})},
		{name: "fail/payload-not-json", status: http.StatusBadRequest, problem: "malformed", run: self("[")},
		{name: "ok/orders", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, b := e.register(t), e.register(t)
				e.newOrder(t, a, "a.test")
				e.newOrder(t, a, "b.test")
				e.newOrder(t, b, "c.test")
				return e.post(t, a, "/acme/account/"+a.id+"/orders", nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if o := decode[map[string][]string](t, r)["orders"]; len(o) != 2 {
					t.Errorf("orders %v, want the account's 2", o)
				}
			}},
		{name: "ok/orders-paged", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.store.mu.Lock()
				for i := 0; i < ordersPageSize+5; i++ {
					id := "o" + strconv.Itoa(1000+i)
					e.store.orders[id] = Order{ID: id, AccountID: a.id, Status: StatusPending, Expires: e.clock.Now().Add(time.Hour)}
				}
				e.store.mu.Unlock()
				r := e.post(t, a, "/acme/account/"+a.id+"/orders", nil)
				e.wantStatus(t, r, http.StatusOK)
				if o := decode[map[string][]string](t, r)["orders"]; len(o) != ordersPageSize {
					t.Fatalf("first page has %d orders, want %d", len(o), ordersPageSize)
				}
				next := testBase + "/acme/account/" + a.id + "/orders?cursor=o" + strconv.Itoa(1000+ordersPageSize-1)
				if !slices.Contains(r.h.Values("Link"), link(next, "next")) {
					t.Fatalf("Link %v lacks rel=next %s", r.h.Values("Link"), next)
				}
				return e.post(t, a, pathOf(t, next), nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if o := decode[map[string][]string](t, r)["orders"]; len(o) != 5 {
					t.Errorf("second page has %d orders, want 5", len(o))
				}
			}},
		{name: "fail/orders-of-other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				a, b := e.register(t), e.register(t)
				return e.post(t, a, "/acme/account/"+b.id+"/orders", nil)
			}},
	})
}

const keyChangePath = "/acme/key-change"

// innerKeyChange is the inner JWS of RFC 8555 §7.3.5, signed by newKey.
func innerKeyChange(t *testing.T, newKey crypto.Signer, h jws.Header, account string, oldKey crypto.PublicKey) json.RawMessage {
	t.Helper()
	old, err := jws.MarshalJWK(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if h.URL == "" {
		h.URL = testBase + keyChangePath
	}
	b, err := jws.Sign(newKey, "", h, payloadBytes(t, map[string]any{"account": account, "oldKey": json.RawMessage(old)}))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandlerKeyChange covers account key rollover (RFC 8555 §7.3.5).
func TestHandlerKeyChange(t *testing.T) {
	rollover := func(inner func(t *testing.T, e *env, a *account) any) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			a := e.register(t)
			return e.post(t, a, keyChangePath, inner(t, e, a))
		}
	}
	runCases(t, []hcase{
		{name: "ok/key-change", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				nk := newKey(t)
				r := e.post(t, a, keyChangePath, innerKeyChange(t, nk, jws.Header{}, a.kid, a.key.Public()))
				e.wantStatus(t, r, http.StatusOK)
				wantAccountLocation(t, r, a.id)
				// The old key is gone (§7.3.5), the new one signs for the account.
				e.wantProblem(t, e.post(t, a, "/acme/account/"+a.id, nil), http.StatusBadRequest, "malformed")
				e.wantProblem(t, e.postJWK(t, a.key, newAccountPath, map[string]any{"onlyReturnExisting": true}), http.StatusBadRequest, "accountDoesNotExist")
				a.key = nk
				return e.post(t, a, "/acme/account/"+a.id, nil)
			}},
		{name: "fail/new-key-taken", status: http.StatusConflict, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, b := e.register(t), e.register(t)
				r := e.post(t, a, keyChangePath, innerKeyChange(t, b.key, jws.Header{}, a.kid, a.key.Public()))
				wantAccountLocation(t, r, b.id)
				return r
			}},
		{name: "fail/inner-not-jws", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(*testing.T, *env, *account) any { return map[string]string{"account": "x"} })},
		{name: "fail/outer-post-as-get", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(*testing.T, *env, *account) any { return nil })},
		{name: "fail/inner-kid", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return innerKeyChange(t, newKey(t), jws.Header{KID: a.kid}, a.kid, a.key.Public())
			})},
		{name: "fail/inner-nonce", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return innerKeyChange(t, newKey(t), jws.Header{Nonce: e.srv.nonces.New()}, a.kid, a.key.Public())
			})},
		{name: "fail/inner-url", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return innerKeyChange(t, newKey(t), jws.Header{URL: testBase + "/acme/new-order"}, a.kid, a.key.Public())
			})},
		{name: "fail/inner-bad-signature", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				jwk, _ := jws.MarshalJWK(newKey(t).Public())
				old, _ := jws.MarshalJWK(a.key.Public())
				return json.RawMessage(rawJWS(t, map[string]any{"alg": "ES256", "jwk": json.RawMessage(jwk), "url": testBase + keyChangePath},
					payloadBytes(t, map[string]any{"account": a.kid, "oldKey": json.RawMessage(old)}), make([]byte, 64)))
			})},
		{name: "fail/inner-weak-key", status: http.StatusBadRequest, problem: "badPublicKey",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return json.RawMessage(rawJWS(t, map[string]any{"alg": "RS256", "jwk": weakRSAJWK(t), "url": testBase + keyChangePath}, []byte("{}"), make([]byte, 128)))
			})},
		{name: "fail/inner-alg-unsupported", status: http.StatusBadRequest, problem: "badSignatureAlgorithm",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				jwk, _ := jws.MarshalJWK(newKey(t).Public())
				return json.RawMessage(rawJWS(t, map[string]any{"alg": "ES256K", "jwk": json.RawMessage(jwk), "url": testBase + keyChangePath}, []byte("{}"), make([]byte, 64)))
			})},
		{name: "fail/inner-other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return innerKeyChange(t, newKey(t), jws.Header{}, testBase+"/acme/account/someone-else", a.key.Public())
			})},
		{name: "fail/inner-wrong-old-key", status: http.StatusForbidden, problem: "unauthorized",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				return innerKeyChange(t, newKey(t), jws.Header{}, a.kid, newKey(t).Public())
			})},
		{name: "fail/inner-payload-not-object", status: http.StatusBadRequest, problem: "malformed",
			run: rollover(func(t *testing.T, e *env, a *account) any {
				b, err := jws.Sign(newKey(t), "", jws.Header{URL: testBase + keyChangePath}, []byte(`["x"]`))
				if err != nil {
					t.Fatal(err)
				}
				return json.RawMessage(b)
			})},
	})
}
