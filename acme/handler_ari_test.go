package acme

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"
)

const renewalInfoPath = "/acme/renewal-info/"

// renewalInfoOf issues a certificate and GETs its renewal information,
// after change (if any) was applied to the stored certificate.
func renewalInfoOf(change func(*Certificate)) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		is := e.issue(t, e.register(t), "a.test")
		if change != nil {
			e.store.mu.Lock()
			c := e.store.certs[lastSegment(is.certPath)]
			change(&c)
			e.store.certs[c.ID] = c
			e.store.mu.Unlock()
		}
		return e.do(t, http.MethodGet, renewalInfoPath+ariCertID(is.leaf), "", nil)
	}
}

// wantWindow checks the suggested window against the stored certificate:
// from 2/3 to 5/6 of its lifetime, or (past) before now when it must be
// renewed at once (RFC 9773 §4.2).
func wantWindow(past bool) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		w := decode[renewalInfoJSON](t, r).SuggestedWindow
		start, err1 := time.Parse(time.RFC3339, w.Start)
		end, err2 := time.Parse(time.RFC3339, w.End)
		if err1 != nil || err2 != nil || !end.After(start) {
			t.Fatalf("window %+v", w)
		}
		now := e.clock.Now()
		for _, c := range e.store.certs {
			life := c.NotAfter.Sub(c.NotBefore)
			switch {
			case past && !end.Before(now):
				t.Errorf("window ends %s, want before now %s", end, now)
			case !past && (!start.Equal(c.NotBefore.Add(life*2/3).Truncate(time.Second)) || !end.Equal(c.NotBefore.Add(life*5/6).Truncate(time.Second))):
				t.Errorf("window %s .. %s for a certificate valid %s .. %s", start, end, c.NotBefore, c.NotAfter)
			}
		}
		if s, err := strconv.Atoi(r.h.Get("Retry-After")); err != nil || s <= 0 {
			t.Errorf("Retry-After %q, want seconds (RFC 9773 §4.3)", r.h.Get("Retry-After"))
		}
	}
}

// TestHandlerRenewalInfo covers GET renewalInfo (RFC 9773 §4).
func TestHandlerRenewalInfo(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	runCases(t, []hcase{
		{name: "ok/window", status: http.StatusOK, run: renewalInfoOf(nil), check: wantWindow(false)},
		{name: "ok/revoked-renew-now", status: http.StatusOK, run: renewalInfoOf(func(c *Certificate) { c.Revoked = true }), check: wantWindow(true)},
		{name: "ok/operator-renew-now", status: http.StatusOK, run: renewalInfoOf(func(c *Certificate) { c.RenewNow = true }), check: wantWindow(true)},
		{name: "fail/id-without-dot", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, renewalInfoPath+"abcdef", "", nil) }},
		{name: "fail/id-not-base64url", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, renewalInfoPath+"a+b.c=d", "", nil) }},
		{name: "fail/id-empty-serial", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.do(t, http.MethodGet, renewalInfoPath+"AAAA.", "", nil) }},
		{name: "fail/other-issuer", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.do(t, http.MethodGet, renewalInfoPath+b64([]byte("another key id"))+"."+b64([]byte{1, 2}), "", nil)
			}},
		{name: "fail/unknown-serial", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.do(t, http.MethodGet, renewalInfoPath+b64(e.ca.Intermediate().SubjectKeyId)+"."+b64([]byte{1, 2}), "", nil)
			}},
	})
}

// replacing issues a certificate for a.test to a new account and returns
// the account and the certificate's ARI identifier.
func (e *env) replacing(t *testing.T) (*account, string) {
	t.Helper()
	a := e.register(t)
	return a, ariCertID(e.issue(t, a, "a.test").leaf)
}

// TestHandlerReplaces covers newOrder's replaces field (RFC 9773 §5).
func TestHandlerReplaces(t *testing.T) {
	replaces := func(id string, names ...string) map[string]any {
		return map[string]any{"identifiers": idents(names...), "replaces": id}
	}
	runCases(t, []hcase{
		{name: "ok/replaces", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				a, id := e.replacing(t)
				return e.post(t, a, newOrderPath, replaces(id, "a.test", "b.test"))
			},
			check: func(t *testing.T, e *env, r *resp) {
				o := decode[orderJSON](t, r)
				var replaced int
				for _, c := range e.store.certs {
					if c.ReplacedBy == lastSegment(r.h.Get("Location")) {
						replaced++
					}
				}
				if o.Replaces == "" || replaced != 1 {
					t.Errorf("order %s; %d certificates marked replaced by it", r.body, replaced)
				}
			}},
		{name: "ok/replaces-after-first-replacement-failed", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				a, id := e.replacing(t)
				r := e.post(t, a, newOrderPath, replaces(id, "a.test"))
				e.wantStatus(t, r, http.StatusCreated)
				az := pathOf(t, decode[orderJSON](t, r).Authorizations[0])
				e.wantStatus(t, e.post(t, a, az, map[string]string{"status": "deactivated"}), http.StatusOK)
				return e.post(t, a, newOrderPath, replaces(id, "a.test"))
			}},
		{name: "fail/already-replaced", status: http.StatusConflict, problem: "alreadyReplaced",
			run: func(t *testing.T, e *env) *resp {
				a, id := e.replacing(t)
				e.wantStatus(t, e.post(t, a, newOrderPath, replaces(id, "a.test")), http.StatusCreated)
				return e.post(t, a, newOrderPath, replaces(id, "a.test"))
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				_, id := e.replacing(t)
				return e.post(t, e.register(t), newOrderPath, replaces(id, "a.test"))
			}},
		{name: "fail/no-shared-identifier", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a, id := e.replacing(t)
				return e.post(t, a, newOrderPath, replaces(id, "b.test"))
			}},
		{name: "fail/unknown-certificate", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				id := base64.RawURLEncoding.EncodeToString(e.ca.Intermediate().SubjectKeyId) + ".AQI"
				return e.post(t, e.register(t), newOrderPath, replaces(id, "a.test"))
			}},
		{name: "fail/malformed-id", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), newOrderPath, replaces("nodot", "a.test"))
			}},
	})
}
