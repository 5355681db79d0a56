package acme

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/certmint/certmint/ca"
)

// The cases here are what real clients send that certmint once refused
// while every peer accepted it (issue 26): Go's zero time for an absent
// notBefore/notAfter, a space after "mailto:", and an order URL taken from
// any order answer's Location.

// zeroTime is how Go marshals a zero time.Time, which `omitempty` never
// omits.
const zeroTime = "0001-01-01T00:00:00Z"

// issuedFor returns the certificate a finalize answer r points to.
func issuedFor(t *testing.T, e *env, r *resp) Certificate {
	t.Helper()
	o := decode[orderJSON](t, r)
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	c, ok := e.store.certs[lastSegment(o.Certificate)]
	if o.Status != StatusValid || !ok {
		t.Fatalf("finalized order %s, want valid with a stored certificate", r.body)
	}
	return c
}

// TestZeroTimeValidity follows orders with zero times through finalize to
// the certificate: both zero is the profile's default validity; a zero
// in one field leaves the real date of the other in force.
func TestZeroTimeValidity(t *testing.T) {
	short := ca.Profile{Name: "short", Validity: 7 * 24 * time.Hour, ExtKeyUsage: ca.DefaultProfile().ExtKeyUsage}
	profiles := func(c *Config) { c.Profiles = map[string]ca.Profile{"default": ca.DefaultProfile(), "short": short} }
	order := func(nb, na any, profile string) func(e *env) map[string]any {
		return func(e *env) map[string]any {
			return map[string]any{"identifiers": idents("a.test"), "notBefore": nb, "notAfter": na, "profile": profile}
		}
	}
	at := func(e *env, d time.Duration) time.Time { return e.clock.Now().Add(d) }
	// wantLifetime checks the certificate lasts exactly d from a NotBefore
	// the CA chose (now, backdated by a minute).
	wantLifetime := func(d time.Duration) func(t *testing.T, e *env, r *resp) {
		return func(t *testing.T, e *env, r *resp) {
			c := issuedFor(t, e, r)
			if got := c.NotAfter.Sub(c.NotBefore); got != d {
				t.Errorf("certificate lasts %s (%s .. %s), want the profile's %s", got, c.NotBefore, c.NotAfter, d)
			}
			if since := time.Since(c.NotBefore); since < 0 || since > 5*time.Minute {
				t.Errorf("certificate NotBefore %s, want now (backdated)", c.NotBefore)
			}
			for _, o := range e.store.orders {
				if o.NotBefore != nil || o.NotAfter != nil {
					t.Errorf("order stored validity %v .. %v, want none given", o.NotBefore, o.NotAfter)
				}
			}
		}
	}
	runCases(t, []hcase{
		{name: "ok/both-zero-default-profile", status: http.StatusOK,
			run: finalizeOrdered(order(zeroTime, zeroTime, "")), check: wantLifetime(90 * 24 * time.Hour)},
		{name: "ok/both-zero-short-profile", status: http.StatusOK, opts: []func(*Config){profiles},
			run: finalizeOrdered(order(zeroTime, zeroTime, "short")), check: wantLifetime(7 * 24 * time.Hour)},
		{name: "ok/both-null", status: http.StatusOK, opts: []func(*Config){profiles},
			run: finalizeOrdered(order(nil, nil, "short")), check: wantLifetime(7 * 24 * time.Hour)},
		{name: "ok/zero-not-before-real-not-after", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				return finalizeOrdered(order(zeroTime, timestamp(at(e, 48*time.Hour)), ""))(t, e)
			},
			check: func(t *testing.T, e *env, r *resp) {
				c := issuedFor(t, e, r)
				if !c.NotAfter.Equal(at(e, 48*time.Hour)) || !c.NotBefore.Equal(at(e, 0)) {
					t.Errorf("certificate %s .. %s, want now .. the requested notAfter %s", c.NotBefore, c.NotAfter, at(e, 48*time.Hour))
				}
			}},
		{name: "ok/real-not-before-zero-not-after", status: http.StatusOK, opts: []func(*Config){profiles},
			run: func(t *testing.T, e *env) *resp {
				return finalizeOrdered(order(timestamp(at(e, time.Hour)), zeroTime, "short"))(t, e)
			},
			check: func(t *testing.T, e *env, r *resp) {
				c := issuedFor(t, e, r)
				if !c.NotBefore.Equal(at(e, time.Hour)) || !c.NotAfter.Equal(at(e, time.Hour+7*24*time.Hour)) {
					t.Errorf("certificate %s .. %s, want the requested notBefore and the profile's 7 days", c.NotBefore, c.NotAfter)
				}
			}},
	})
}

// TestHandlerZeroTimes covers newOrder's answers to zero and null times
// (RFC 8555 §7.4 makes both fields optional).
func TestHandlerZeroTimes(t *testing.T) {
	validity := func(nb, na any) map[string]any {
		return map[string]any{"identifiers": idents("a.test"), "notBefore": nb, "notAfter": na}
	}
	ts := func(e *env, d time.Duration) string { return timestamp(e.clock.Now().Add(d)) }
	wantValidity := func(nb, na func(e *env) string) func(t *testing.T, e *env, r *resp) {
		return func(t *testing.T, e *env, r *resp) {
			o := decode[orderJSON](t, r)
			if o.NotBefore != nb(e) || o.NotAfter != na(e) {
				t.Errorf("order validity %q .. %q, want %q .. %q", o.NotBefore, o.NotAfter, nb(e), na(e))
			}
		}
	}
	none := func(*env) string { return "" }
	runCases(t, []hcase{
		{name: "ok/both-zero", status: http.StatusCreated, run: orderWith(validity(zeroTime, zeroTime)),
			check: wantValidity(none, none)},
		{name: "ok/both-null", status: http.StatusCreated, run: orderWith(`{"identifiers":[{"type":"dns","value":"a.test"}],"notBefore":null,"notAfter":null}`),
			check: wantValidity(none, none)},
		{name: "ok/zero-with-fraction", status: http.StatusCreated, run: orderWith(validity("0001-01-01T00:00:00.000Z", nil)),
			check: wantValidity(none, none)},
		{name: "ok/zero-not-before", status: http.StatusCreated,
			run:   func(t *testing.T, e *env) *resp { return orderWith(validity(zeroTime, ts(e, 48*time.Hour)))(t, e) },
			check: wantValidity(func(e *env) string { return ts(e, 0) }, func(e *env) string { return ts(e, 48*time.Hour) })},
		{name: "ok/null-not-after", status: http.StatusCreated,
			run:   func(t *testing.T, e *env) *resp { return orderWith(validity(ts(e, time.Hour), nil))(t, e) },
			check: wantValidity(func(e *env) string { return ts(e, time.Hour) }, func(e *env) string { return ts(e, time.Hour+90*24*time.Hour) })},
		// The zero time is "not given", not a lenient parse: a real date in
		// year 1 is still refused, and so is a bad one beside a zero.
		{name: "fail/year-one-not-zero", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(validity("0001-01-01T00:00:01Z", nil)), check: func(t *testing.T, e *env, _ *resp) { wantNothingWritten(t, e) }},
		{name: "fail/zero-beside-malformed", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(validity(zeroTime, "soon")), check: func(t *testing.T, e *env, _ *resp) { wantNothingWritten(t, e) }},
		{name: "fail/zero-beside-too-long", status: http.StatusBadRequest, problem: "malformed",
			run:   func(t *testing.T, e *env) *resp { return orderWith(validity(zeroTime, ts(e, 91*24*time.Hour)))(t, e) },
			check: func(t *testing.T, e *env, _ *resp) { wantNothingWritten(t, e) }},
	})
}

// TestHandlerContactWhitespace: "mailto: ops@example.test" (acme.sh's
// form) is stored as mailto:ops@example.test, at registration and on
// update; what is still not one address stays invalidContact and
// changes nothing.
func TestHandlerContactWhitespace(t *testing.T) {
	sent := []string{"mailto: ops@example.test", "mailto:\tdev@example.test  "}
	normal := []string{"mailto:ops@example.test", "mailto:dev@example.test"}
	original := []string{"mailto:first@example.test"}
	// registered makes an account with the original contact.
	registered := func(t *testing.T, e *env) *account {
		key := newKey(t)
		r := e.postJWK(t, key, newAccountPath, map[string]any{"contact": original})
		e.wantStatus(t, r, http.StatusCreated)
		return &account{key: key, kid: r.h.Get("Location"), id: lastSegment(r.h.Get("Location"))}
	}
	update := func(contact ...string) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			a := registered(t, e)
			return e.post(t, a, "/acme/account/"+a.id, map[string]any{"contact": contact})
		}
	}
	register := func(contact ...string) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			return e.postJWK(t, newKey(t), newAccountPath, map[string]any{"contact": contact})
		}
	}
	// wantStored checks the answer and every stored account show want.
	wantStored := func(want []string) func(t *testing.T, e *env, r *resp) {
		return func(t *testing.T, e *env, r *resp) {
			if got := decode[accountJSON](t, r).Contact; !slices.Equal(got, want) {
				t.Errorf("answer contact %q, want %q", got, want)
			}
			e.store.mu.Lock()
			defer e.store.mu.Unlock()
			for _, a := range e.store.accounts {
				if !slices.Equal(a.Contact, want) {
					t.Errorf("stored contact %q, want %q", a.Contact, want)
				}
			}
		}
	}
	noAccount := func(t *testing.T, e *env, _ *resp) {
		if len(e.store.accounts) != 0 {
			t.Errorf("a refused newAccount stored %d accounts", len(e.store.accounts))
		}
	}
	unchanged := func(t *testing.T, e *env, _ *resp) {
		for _, a := range e.store.accounts {
			if !slices.Equal(a.Contact, original) {
				t.Errorf("a refused update left contact %q, want %q", a.Contact, original)
			}
		}
	}
	var cases []hcase
	for _, bad := range []struct{ name, contact, problem string }{
		{"two-addresses", "mailto: ops@example.test dev@example.test", "invalidContact"},
		{"list", "mailto: ops@example.test, dev@example.test", "invalidContact"},
		{"only-space", "mailto: ", "invalidContact"},
		{"display-name", "mailto: Ops <ops@example.test>", "invalidContact"},
		{"line-break", "mailto:ops@example.test\r\n", "invalidContact"},
		{"space-before-scheme", " mailto:ops@example.test", "unsupportedContact"},
	} {
		cases = append(cases,
			hcase{name: "new-account/fail/" + bad.name, status: http.StatusBadRequest, problem: bad.problem,
				run: register(bad.contact), check: noAccount},
			hcase{name: "update/fail/" + bad.name, status: http.StatusBadRequest, problem: bad.problem,
				run: update(bad.contact), check: unchanged})
	}
	cases = append(cases,
		hcase{name: "new-account/ok/space-after-mailto", status: http.StatusCreated, run: register(sent...), check: wantStored(normal)},
		hcase{name: "update/ok/space-after-mailto", status: http.StatusOK, run: update(sent...), check: wantStored(normal)})
	runCases(t, cases)
}

// TestHandlerOrderLocation: every answer carrying an order names its URL
// in Location, as newOrder's does (RFC 8555 §7.4); some clients keep the
// order URL from the latest answer.
func TestHandlerOrderLocation(t *testing.T) {
	// wantLocation checks Location is the URL of the order whose finalize
	// URL the body carries.
	wantLocation := func(t *testing.T, _ *env, r *resp) {
		t.Helper()
		o := decode[orderJSON](t, r)
		if loc := r.h.Get("Location"); loc == "" || loc+"/finalize" != o.Finalize {
			t.Errorf("Location %q, want the order URL (finalize %q)", loc, o.Finalize)
		}
	}
	get := func(prepare func(t *testing.T, e *env, a *account) string) func(t *testing.T, e *env) *resp {
		return func(t *testing.T, e *env) *resp {
			a := e.register(t)
			return e.post(t, a, prepare(t, e, a), nil)
		}
	}
	runCases(t, []hcase{
		{name: "new-order", status: http.StatusCreated, run: orderWith(orderOf("a.test")), check: wantLocation},
		{name: "get-pending", status: http.StatusOK, check: wantLocation,
			run: get(func(t *testing.T, e *env, a *account) string { p, _ := e.newOrder(t, a, "a.test"); return p })},
		{name: "get-ready", status: http.StatusOK, check: wantLocation,
			run: get(func(t *testing.T, e *env, a *account) string { return e.readyOrder(t, a, "a.test") })},
		{name: "get-valid", status: http.StatusOK, check: wantLocation,
			run: get(func(t *testing.T, e *env, a *account) string { return e.issue(t, a, "a.test").orderPath })},
		{name: "get-expired", status: http.StatusOK, check: wantLocation,
			run: get(func(t *testing.T, e *env, a *account) string {
				p, _ := e.newOrder(t, a, "a.test")
				e.clock.Advance(25 * time.Hour)
				return p
			})},
		{name: "finalize", status: http.StatusOK, check: wantLocation,
			run: finalizeWith([]string{"a.test"}, goodCSR("", "a.test"))},
	})
}
