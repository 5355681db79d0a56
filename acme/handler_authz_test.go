package acme

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
)

// firstAuthz orders names for a new account and returns the account, the
// order's path and its first authorization's path.
func (e *env) firstAuthz(t *testing.T, names ...string) (*account, string, string) {
	t.Helper()
	a := e.register(t)
	orderPath, o := e.newOrder(t, a, names...)
	return a, orderPath, pathOf(t, o.Authorizations[0])
}

// orderStatus reads an order's status over ACME.
func (e *env) orderStatus(t *testing.T, a *account, orderPath string) orderJSON {
	t.Helper()
	r := e.post(t, a, orderPath, nil)
	e.wantStatus(t, r, http.StatusOK)
	return decode[orderJSON](t, r)
}

// TestHandlerOrder covers POST-as-GET on an order (RFC 8555 §7.4).
func TestHandlerOrder(t *testing.T) {
	runCases(t, []hcase{
		{name: "ok/post-as-get", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, orderPath, _ := e.firstAuthz(t, "a.test")
				return e.post(t, a, orderPath, nil)
			},
			check: wantOrder(StatusPending, 1)},
		{name: "ok/expired-order-is-invalid", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, orderPath, _ := e.firstAuthz(t, "a.test")
				e.clock.Advance(25 * time.Hour)
				return e.post(t, a, orderPath, nil)
			},
			check: wantOrder(StatusInvalid, 1)},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				_, orderPath, _ := e.firstAuthz(t, "a.test")
				return e.post(t, e.register(t), orderPath, nil)
			}},
		{name: "fail/unknown-order", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), "/acme/order/nope", nil) }},
	})
}

// getAuthz orders name and fetches the authorization (POST-as-GET).
func getAuthz(name string) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a, _, az := e.firstAuthz(t, name)
		return e.post(t, a, az, nil)
	}
}

// TestHandlerAuthz covers POST-as-GET and deactivation of authorizations
// (RFC 8555 §7.5, §7.5.2).
func TestHandlerAuthz(t *testing.T) {
	deactivate := map[string]string{"status": "deactivated"}
	runCases(t, []hcase{
		{name: "ok/post-as-get", status: http.StatusOK, run: getAuthz("a.test"),
			check: func(t *testing.T, e *env, r *resp) {
				az := decode[authzJSON](t, r)
				if az.Status != StatusPending || az.Identifier != (Identifier{"dns", "a.test"}) || len(az.Challenges) != 4 {
					t.Errorf("authorization %s", r.body)
				}
				for _, ch := range az.Challenges {
					if ch.Status != StatusPending || len(ch.Token) < 43 || !strings.HasPrefix(ch.URL, testBase+"/acme/chall/") {
						t.Errorf("challenge %+v", ch)
					}
				}
				if r.h.Get("Retry-After") == "" {
					t.Errorf("pending authorization without Retry-After")
				}
			}},
		{name: "ok/ip-gets-http-and-tls-alpn", status: http.StatusOK, run: getAuthz("192.0.2.1"),
			check: func(t *testing.T, e *env, r *resp) {
				az := decode[authzJSON](t, r)
				if len(az.Challenges) != 2 || az.Challenges[0].Type != "http-01" || az.Challenges[1].Type != "tls-alpn-01" {
					t.Errorf("IP authorization %s (RFC 8738 §7)", r.body)
				}
			}},
		{name: "ok/expired", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, _, az := e.firstAuthz(t, "a.test")
				e.clock.Advance(25 * time.Hour)
				return e.post(t, a, az, nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if st := decode[authzJSON](t, r).Status; st != StatusExpired {
					t.Errorf("status %s after expiry, want expired", st)
				}
			}},
		{name: "ok/deactivate-pending", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, orderPath, az := e.firstAuthz(t, "a.test")
				r := e.post(t, a, az, deactivate)
				if st := e.orderStatus(t, a, orderPath).Status; st != StatusInvalid {
					t.Errorf("order is %s after its authorization was deactivated, want invalid", st)
				}
				return r
			},
			check: func(t *testing.T, e *env, r *resp) {
				if st := decode[authzJSON](t, r).Status; st != StatusDeactivated {
					t.Errorf("status %s", st)
				}
			}},
		{name: "ok/deactivate-valid", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				o := e.orderStatus(t, a, e.readyOrder(t, a, "a.test"))
				return e.post(t, a, pathOf(t, o.Authorizations[0]), deactivate)
			}},
		{name: "fail/deactivate-twice", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, az := e.firstAuthz(t, "a.test")
				e.wantStatus(t, e.post(t, a, az, deactivate), http.StatusOK)
				return e.post(t, a, az, deactivate)
			}},
		{name: "fail/status-not-deactivated", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, az := e.firstAuthz(t, "a.test")
				return e.post(t, a, az, map[string]string{"status": "valid"})
			}},
		{name: "fail/payload-not-json", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, az := e.firstAuthz(t, "a.test")
				return e.post(t, a, az, "{")
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				_, _, az := e.firstAuthz(t, "a.test")
				return e.post(t, e.register(t), az, deactivate)
			},
			check: func(t *testing.T, e *env, r *resp) {
				for _, a := range e.store.authzs {
					if a.Status != StatusPending {
						t.Errorf("authorization is %s after another account's request", a.Status)
					}
				}
			}},
		{name: "fail/unknown-authz", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), "/acme/authz/nope", nil) }},
	})
}

// TestHandlerNewAuthz covers pre-authorization (RFC 8555 §7.4.1).
func TestHandlerNewAuthz(t *testing.T) {
	const path = "/acme/new-authz"
	preauth := func(typ, value string) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			return e.post(t, e.register(t), path, map[string]any{"identifier": Identifier{typ, value}})
		}
	}
	runCases(t, []hcase{
		{name: "ok/new-authz", status: http.StatusCreated, run: preauth("dns", "A.test"),
			check: func(t *testing.T, e *env, r *resp) {
				az := decode[authzJSON](t, r)
				if !strings.HasPrefix(r.h.Get("Location"), testBase+"/acme/authz/") || az.Status != StatusPending ||
					az.Identifier.Value != "a.test" || len(az.Challenges) == 0 {
					t.Errorf("Location %q, authorization %s", r.h.Get("Location"), r.body)
				}
				for _, a := range e.store.authzs {
					if !a.PreAuth {
						t.Errorf("stored authorization is not marked as a pre-authorization")
					}
				}
			}},
		{name: "ok/ip", status: http.StatusCreated, run: preauth("ip", "192.0.2.1")},
		{name: "fail/wildcard", status: http.StatusBadRequest, problem: "rejectedIdentifier", run: preauth("dns", "*.a.test")},
		{name: "fail/bad-name", status: http.StatusBadRequest, problem: "rejectedIdentifier", run: preauth("dns", "a_b.test")},
		{name: "fail/unsupported-type", status: http.StatusBadRequest, problem: "unsupportedIdentifier", run: preauth("email", "a@b.test")},
		{name: "fail/policy", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			opts: []func(*Config){func(c *Config) { c.Policy, _ = policy.ParseEntries([]string{"allowed.test"}) }},
			run:  preauth("dns", "other.test")},
		{name: "fail/post-as-get", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), path, nil) }},
		{name: "fail/rate-limited", status: http.StatusTooManyRequests, problem: "rateLimited",
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.NewOrderPerAccount = ratelimit.Rule{Name: "newOrder/account", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.wantStatus(t, e.post(t, a, path, map[string]any{"identifier": Identifier{"dns", "a.test"}}), http.StatusCreated)
				return e.post(t, a, path, map[string]any{"identifier": Identifier{"dns", "b.test"}})
			},
			check: wantRetryAfter},
	})
}
