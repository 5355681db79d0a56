package acme

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/acme/validate"
)

// challengeSetup orders name for a new account and returns the account,
// the order's path, the authorization's path and the path of its
// challenge of type typ.
func (e *env) challengeSetup(t *testing.T, name, typ string) (a *account, orderPath, authzPath, chPath string) {
	t.Helper()
	a, orderPath, authzPath = e.firstAuthz(t, name)
	return a, orderPath, authzPath, e.challengeOf(t, a, authzPath, typ)
}

// answer posts {} to the challenge of type typ of a new order for name:
// the client asks the server to validate (RFC 8555 §7.5.1).
func answer(name, typ string) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a, _, _, ch := e.challengeSetup(t, name, typ)
		return e.post(t, a, ch, map[string]any{})
	}
}

// wantUpLink checks the Link rel="up" to the authorization (RFC 8555 §7.5).
func wantUpLink(t *testing.T, r *resp) {
	t.Helper()
	for _, l := range r.h.Values("Link") {
		if strings.HasPrefix(l, "<"+testBase+"/acme/authz/") && strings.HasSuffix(l, `>;rel="up"`) {
			return
		}
	}
	t.Errorf("Link %v has no rel=up to the authorization", r.h.Values("Link"))
}

// failingKind is a challenge answer the fake validator fails with kind: the
// challenge, its authorization and its order turn invalid with that
// problem (RFC 8555 §7.1.6, §8).
func failingKind(kind validate.Kind) hcase {
	return hcase{name: "ok/invalid-" + string(kind), status: http.StatusOK,
		run: func(t *testing.T, e *env) *resp {
			e.val.failWith(kind, "what the validator saw")
			a, orderPath, authzPath, ch := e.challengeSetup(t, "a.test", "http-01")
			r := e.post(t, a, ch, map[string]any{})
			ar := e.post(t, a, authzPath, nil)
			e.wantStatus(t, ar, http.StatusOK)
			if st := decode[authzJSON](t, ar).Status; st != StatusInvalid {
				t.Errorf("authorization is %s, want invalid", st)
			}
			o := e.orderStatus(t, a, orderPath)
			if o.Status != StatusInvalid || o.Error == nil || o.Error.Type != ProblemNS+string(kind) {
				t.Errorf("order %+v, want invalid with a %s error", o, kind)
			}
			return r
		},
		check: func(t *testing.T, e *env, r *resp) {
			wantUpLink(t, r)
			ch := decode[challengeJSON](t, r)
			if ch.Status != StatusInvalid || ch.Error == nil || ch.Error.Type != ProblemNS+string(kind) ||
				ch.Error.Detail != "what the validator saw" || ch.Error.Identifier == nil || ch.Error.Identifier.Value != "a.test" {
				t.Errorf("challenge %s, want invalid with problem %s naming a.test", r.body, kind)
			}
		}}
}

// TestHandlerChallenge covers challenge POSTs (RFC 8555 §7.5.1): the
// validation runs through the fake validator, and its result reaches the
// authorization and the order in the same answer.
func TestHandlerChallenge(t *testing.T) {
	cases := []hcase{
		{name: "ok/valid-makes-authz-valid-and-order-ready", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, orderPath, authzPath, ch := e.challengeSetup(t, "a.test", "http-01")
				r := e.post(t, a, ch, map[string]any{})
				ar := e.post(t, a, authzPath, nil)
				e.wantStatus(t, ar, http.StatusOK)
				az := decode[authzJSON](t, ar)
				if az.Status != StatusValid || len(az.Challenges) != 1 || az.Challenges[0].Type != "http-01" {
					t.Errorf("authorization %s, want valid listing the http-01 challenge only", ar.body)
				}
				if st := e.orderStatus(t, a, orderPath).Status; st != StatusReady {
					t.Errorf("order is %s, want ready", st)
				}
				// What the validator was asked (RFC 8555 §8.1 key authorization).
				thumb, _ := jws.Thumbprint(a.key.Public())
				reqs := e.val.requests()
				if len(reqs) != 1 || reqs[0].Type != "http-01" || reqs[0].Value != "a.test" || reqs[0].IdentType != "dns" ||
					reqs[0].KeyAuth != reqs[0].Token+"."+thumb || reqs[0].AccountURL != a.kid {
					t.Errorf("validator asked %+v", reqs)
				}
				return r
			},
			check: func(t *testing.T, e *env, r *resp) {
				wantUpLink(t, r)
				ch := decode[challengeJSON](t, r)
				if ch.Status != StatusValid || ch.Validated == "" || ch.Error != nil {
					t.Errorf("challenge %s, want valid with validated", r.body)
				}
			}},
		{name: "ok/valid-dns-01-wildcard", status: http.StatusOK, run: answer("*.a.test", "dns-01"),
			check: func(t *testing.T, e *env, r *resp) {
				if reqs := e.val.requests(); len(reqs) != 1 || reqs[0].Type != "dns-01" || reqs[0].Value != "a.test" {
					t.Errorf("validator asked %+v", reqs)
				}
			}},
		{name: "ok/valid-tls-alpn-01-ip", status: http.StatusOK, run: answer("192.0.2.1", "tls-alpn-01"),
			check: func(t *testing.T, e *env, r *resp) {
				if reqs := e.val.requests(); len(reqs) != 1 || reqs[0].IdentType != "ip" || reqs[0].Value != "192.0.2.1" {
					t.Errorf("validator asked %+v", reqs)
				}
			}},
		{name: "ok/post-as-get-does-not-validate", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				return e.post(t, a, ch, nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				wantUpLink(t, r)
				if ch := decode[challengeJSON](t, r); ch.Status != StatusPending || len(e.val.requests()) != 0 {
					t.Errorf("challenge %s after POST-as-GET, %d validations", r.body, len(e.val.requests()))
				}
			}},
		{name: "ok/repeat-answer-does-not-validate-again", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				e.wantStatus(t, e.post(t, a, ch, map[string]any{}), http.StatusOK)
				return e.post(t, a, ch, map[string]any{})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if ch := decode[challengeJSON](t, r); ch.Status != StatusValid || len(e.val.requests()) != 1 {
					t.Errorf("challenge %s, %d validations", r.body, len(e.val.requests()))
				}
			}},
		failingKind(validate.KindConnection),
		failingKind(validate.KindDNS),
		failingKind(validate.KindIncorrectResponse),
		failingKind(validate.KindTLS),
		failingKind(validate.KindUnauthorized),
		{name: "ok/invalid-validator-could-not-run", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				e.val.set(errors.New("resolver config broken"))
				return answer("a.test", "http-01")(t, e)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if ch := decode[challengeJSON](t, r); ch.Status != StatusInvalid || ch.Error == nil || ch.Error.Type != ProblemNS+"serverInternal" {
					t.Errorf("challenge %s", r.body)
				}
			}},
		{name: "ok/slow-validation-answers-processing", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				// Longer than validationWait: the answer says processing with
				// Retry-After (RFC 8555 §7.5.1), the result lands later.
				hold := make(chan struct{})
				var once sync.Once
				release := func() { once.Do(func() { close(hold) }) }
				t.Cleanup(release) // before the server's Close, which waits for validations
				e.val.mu.Lock()
				e.val.hold = hold
				e.val.mu.Unlock()
				a, orderPath, _, ch := e.challengeSetup(t, "a.test", "http-01")
				r := e.post(t, a, ch, map[string]any{})
				if c := decode[challengeJSON](t, r); c.Status != StatusProcessing || r.h.Get("Retry-After") == "" {
					t.Errorf("slow validation answered %s (Retry-After %q), want processing", r.body, r.h.Get("Retry-After"))
				}
				release()
				deadline := time.Now().Add(5 * time.Second)
				for e.orderStatus(t, a, orderPath).Status != StatusReady {
					if time.Now().After(deadline) {
						t.Fatal("the slow validation never made the order ready")
					}
					time.Sleep(5 * time.Millisecond)
				}
				return r
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				_, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				return e.post(t, e.register(t), ch, map[string]any{})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if n := len(e.val.requests()); n != 0 {
					t.Errorf("%d validations for another account's request", n)
				}
			}},
		{name: "fail/unknown-challenge", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), "/acme/chall/nope", map[string]any{})
			}},
		{name: "fail/payload-not-object", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				return e.post(t, a, ch, "[]")
			}},
		{name: "fail/authz-expired", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				e.clock.Advance(25 * time.Hour)
				return e.post(t, a, ch, map[string]any{})
			}},
		{name: "fail/authz-deactivated", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, _, az, ch := e.challengeSetup(t, "a.test", "http-01")
				e.wantStatus(t, e.post(t, a, az, map[string]string{"status": "deactivated"}), http.StatusOK)
				return e.post(t, a, ch, map[string]any{})
			}},
		{name: "fail/too-many-failed-validations", status: http.StatusTooManyRequests, problem: "rateLimited",
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.FailedValidationsPerAccount = ratelimit.Rule{Name: "failed/account", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				e.val.failWith(validate.KindConnection, "refused")
				a, _, _, ch := e.challengeSetup(t, "a.test", "http-01")
				e.wantStatus(t, e.post(t, a, ch, map[string]any{}), http.StatusOK)
				_, o := e.newOrder(t, a, "b.test")
				return e.post(t, a, e.challengeOf(t, a, pathOf(t, o.Authorizations[0]), "http-01"), map[string]any{})
			},
			check: wantRetryAfter},
	}
	runCases(t, cases)
}

// TestHandlerResumeValidations checks that a challenge left processing
// (a crash mid-validation) is validated again at the next start.
func TestHandlerResumeValidations(t *testing.T) {
	e := newEnv(t)
	a, orderPath, _, ch := e.challengeSetup(t, "a.test", "http-01")
	if err := e.store.StartChallenge(context.Background(), lastSegment(ch)); err != nil {
		t.Fatal(err)
	}
	n, err := e.srv.ResumeValidations(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ResumeValidations = %d, %v; want 1 restarted", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.orderStatus(t, a, orderPath).Status != StatusReady {
		if time.Now().After(deadline) {
			t.Fatal("the resumed validation did not make the order ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
