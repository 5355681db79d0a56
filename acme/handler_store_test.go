package acme

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/ratelimit"
)

// down makes the named store method fail once with ErrUnavailable, as a
// database that cannot be reached does.
func (e *env) down(method string) {
	e.store.failOnce(method, fmt.Errorf("%s: connection refused: %w", method, ErrUnavailable))
}

// unavailable is a case whose request meets a database that is down at
// method: the answer is 503 serverInternal with Retry-After and a nonce,
// and nothing of the cause reaches the client.
func unavailable(name, method string, run func(t *testing.T, e *env) (*account, string, any)) hcase {
	return hcase{name: name, status: http.StatusServiceUnavailable, problem: "serverInternal",
		run: func(t *testing.T, e *env) *resp {
			a, path, payload := run(t, e)
			e.down(method)
			return e.post(t, a, path, payload)
		},
		check: func(t *testing.T, e *env, r *resp) {
			if r.h.Get("Retry-After") == "" {
				t.Errorf("no Retry-After on a database-down answer")
			}
			if p := decode[Problem](t, r); !strings.HasPrefix(p.Detail, "the server's database is unavailable; retry later") ||
				strings.Contains(p.Detail, "connection refused") {
				t.Errorf("detail %q: the internal cause must stay in the log", p.Detail)
			}
		}}
}

// TestHandlerStoreUnavailable covers each endpoint's answer when its own
// store call finds the database down.
func TestHandlerStoreUnavailable(t *testing.T) {
	onOrder := func(t *testing.T, e *env) (*account, string, any) {
		a, orderPath, _ := e.firstAuthz(t, "a.test")
		return a, orderPath, nil
	}
	onAuthz := func(t *testing.T, e *env) (*account, string, any) {
		a, _, az := e.firstAuthz(t, "a.test")
		return a, az, nil
	}
	onCert := func(t *testing.T, e *env) (*account, string, any) {
		a := e.register(t)
		return a, e.issue(t, a, "a.test").certPath, nil
	}
	runCases(t, []hcase{
		unavailable("fail/order", "GetOrder", onOrder),
		unavailable("fail/authz", "GetAuthorization", onAuthz),
		unavailable("fail/authz-deactivate", "DeactivateAuthorization", func(t *testing.T, e *env) (*account, string, any) {
			a, _, az := e.firstAuthz(t, "a.test")
			return a, az, map[string]string{"status": "deactivated"}
		}),
		unavailable("fail/challenge", "GetChallenge", func(t *testing.T, e *env) (*account, string, any) {
			a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
			return a, ch, map[string]any{}
		}),
		unavailable("fail/certificate", "GetCertificate", onCert),
		unavailable("fail/revoke-lookup", "GetCertificateBySerial", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, revokePath, revokeBody(e.issue(t, a, "a.test").leaf.Raw, nil)
		}),
		unavailable("fail/orders-list", "ListOrderIDs", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, "/acme/account/" + a.id + "/orders", nil
		}),
		unavailable("fail/account-update", "UpdateAccountContact", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, "/acme/account/" + a.id, map[string]any{"contact": []string{"mailto:a@b.test"}}
		}),
		unavailable("fail/account-deactivate", "DeactivateAccount", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, "/acme/account/" + a.id, map[string]string{"status": "deactivated"}
		}),
		unavailable("fail/key-change", "ChangeAccountKey", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, keyChangePath, innerKeyChange(t, newKey(t), jws.Header{}, a.kid, a.key.Public())
		}),
		unavailable("fail/new-order-reuse-lookup", "FindReusableAuthorization", func(t *testing.T, e *env) (*account, string, any) {
			return e.register(t), newOrderPath, orderOf("a.test")
		}),
		unavailable("fail/new-order-pending-count", "CountPendingAuthorizations", func(t *testing.T, e *env) (*account, string, any) {
			return e.register(t), newOrderPath, orderOf("a.test")
		}),
		unavailable("fail/finalize-order", "GetOrder", func(t *testing.T, e *env) (*account, string, any) {
			a := e.register(t)
			return a, e.readyOrder(t, a, "a.test") + "/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")}
		}),
		{name: "fail/panic-becomes-server-internal", status: http.StatusInternalServerError, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a, orderPath, _ := e.firstAuthz(t, "a.test")
				e.store.failOnce("GetOrder", panicError("nil map somewhere"))
				return e.post(t, a, orderPath, nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if strings.Contains(string(r.body), "nil map") {
					t.Errorf("the panic's text reached the client: %s", r.body)
				}
			}},
		{name: "fail/renewal-info", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				is := e.issue(t, e.register(t), "a.test")
				e.down("GetCertificateBySerial")
				return e.do(t, http.MethodGet, renewalInfoPath+ariCertID(is.leaf), "", nil)
			}},
	})
}

// TestHandlerSharedNonces covers nonces redeemed in the store, as replicas
// sharing Postgres do (RFC 8555 §6.5).
func TestHandlerSharedNonces(t *testing.T) {
	runCases(t, []hcase{
		{name: "ok/new-account", shared: true, status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp { return e.postJWK(t, newKey(t), newAccountPath, map[string]any{}) }},
		{name: "fail/replayed-nonce", shared: true, status: http.StatusBadRequest, problem: "badNonce",
			run: func(t *testing.T, e *env) *resp {
				body := e.sign(t, newKey(t), "", newAccountPath, map[string]any{})
				e.wantStatus(t, e.postBody(t, newAccountPath, body), http.StatusCreated)
				return e.postBody(t, newAccountPath, body)
			}},
		{name: "fail/nonce-store-down", shared: true, status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				body := e.sign(t, newKey(t), "", newAccountPath, map[string]any{})
				e.down("UseNonce")
				return e.postBody(t, newAccountPath, body)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if len(e.store.accounts) != 0 {
					t.Errorf("an account was created although its nonce could not be checked")
				}
			}},
		{name: "fail/expired-nonce", shared: true, status: http.StatusBadRequest, problem: "badNonce",
			run: func(t *testing.T, e *env) *resp {
				body := e.sign(t, newKey(t), "", newAccountPath, map[string]any{})
				e.clock.Advance(61 * time.Minute)
				return e.postBody(t, newAccountPath, body)
			}},
	})
}

// TestHandlerNewAccountRateLimit covers the per-address newAccount limit.
func TestHandlerNewAccountRateLimit(t *testing.T) {
	runCases(t, []hcase{
		{name: "fail/new-accounts-per-ip", status: http.StatusTooManyRequests, problem: "rateLimited",
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.NewAccountPerIP = ratelimit.Rule{Name: "newAccount/ip", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				e.register(t)
				return e.postJWK(t, newKey(t), newAccountPath, map[string]any{})
			},
			check: wantRetryAfter},
		{name: "ok/existing-account-not-counted", status: http.StatusOK,
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.NewAccountPerIP = ratelimit.Rule{Name: "newAccount/ip", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.postJWK(t, a.key, newAccountPath, map[string]any{})
			}},
	})
}
