package acme

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/ca"
)

const newOrderPath = "/acme/new-order"

// memRateStore is an in-memory ratelimit.Store.
type memRateStore struct {
	mu   sync.Mutex
	hits map[string]int64
}

func (m *memRateStore) AddRateLimitHits(_ context.Context, bucket string, start, _ time.Time, n int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hits == nil {
		m.hits = map[string]int64{}
	}
	k := bucket + "@" + start.String()
	m.hits[k] += n
	return m.hits[k], nil
}

func (m *memRateStore) RateLimitHits(_ context.Context, bucket string, start time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[bucket+"@"+start.String()], nil
}

func (m *memRateStore) SweepRateLimits(context.Context, time.Time) (int64, error) { return 0, nil }

// withLimits turns rate limiting on with rules set by set.
func withLimits(set func(*ratelimit.Config)) func(*Config) {
	return func(c *Config) {
		c.Limiter = ratelimit.New(&memRateStore{}, c.Now)
		set(&c.RateLimits)
	}
}

// orderWith posts a newOrder with the given payload for a new account.
func orderWith(payload any) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), newOrderPath, payload) }
}

func orderOf(names ...string) map[string]any { return map[string]any{"identifiers": idents(names...)} }

// wantSubproblems checks the problem's subproblems name these identifiers
// with these types (RFC 8555 §6.7.1).
func wantSubproblems(typ string, values ...string) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		p := decode[Problem](t, r)
		var got []string
		for _, s := range p.Subproblems {
			if s.Type != ProblemNS+typ || s.Identifier == nil {
				t.Errorf("subproblem %+v, want type %s with an identifier", s, typ)
				continue
			}
			got = append(got, s.Identifier.Value)
		}
		if !slices.Equal(got, values) {
			t.Errorf("subproblems for %v, want %v", got, values)
		}
	}
}

// wantOrder checks the status and authorization count of an order answer.
func wantOrder(status string, authzs int) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		o := decode[orderJSON](t, r)
		if o.Status != status || len(o.Authorizations) != authzs {
			t.Errorf("order %s, want %s with %d authorizations", r.body, status, authzs)
		}
	}
}

// TestHandlerNewOrder covers newOrder (RFC 8555 §7.4) with the profiles
// draft's profile and ARI's replaces left to handler_ari_test.go.
func TestHandlerNewOrder(t *testing.T) {
	short := ca.Profile{Name: "short", Description: "7 days", Validity: 7 * 24 * time.Hour, ExtKeyUsage: ca.DefaultProfile().ExtKeyUsage}
	profiles := func(c *Config) {
		c.Profiles = map[string]ca.Profile{"default": ca.DefaultProfile(), "short": short}
	}
	allowOnly := func(c *Config) {
		rules, err := policy.ParseEntries([]string{"allowed.test", "192.0.2.0/24"})
		if err != nil {
			panic(err)
		}
		c.Policy = rules
	}
	validity := func(nb, na string) map[string]any {
		return map[string]any{"identifiers": idents("a.test"), "notBefore": nb, "notAfter": na}
	}
	ts := func(e *env, d time.Duration) string { return timestamp(e.clock.Now().Add(d)) }
	cases := []hcase{
		{name: "ok/new-order", status: http.StatusCreated, run: orderWith(orderOf("a.test", "b.test")),
			check: func(t *testing.T, e *env, r *resp) {
				wantOrder(StatusPending, 2)(t, e, r)
				o := decode[orderJSON](t, r)
				loc := r.h.Get("Location")
				if !strings.HasPrefix(loc, testBase+"/acme/order/") || o.Finalize != loc+"/finalize" {
					t.Errorf("Location %q, finalize %q", loc, o.Finalize)
				}
				if o.Expires != timestamp(e.clock.Now().Add(24*time.Hour)) || o.Profile != "default" {
					t.Errorf("expires %s profile %q", o.Expires, o.Profile)
				}
				if r.h.Get("Retry-After") == "" {
					t.Errorf("pending order without Retry-After")
				}
			}},
		{name: "ok/dns-and-ip", status: http.StatusCreated, run: orderWith(orderOf("a.test", "192.0.2.1", "2001:db8::1")),
			check: wantOrder(StatusPending, 3)},
		{name: "ok/wildcard-gets-dns-challenges-only", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				r := e.post(t, a, newOrderPath, orderOf("*.a.test"))
				if r.code != http.StatusCreated {
					t.Fatalf("newOrder: %d %s", r.code, r.body)
				}
				az := e.post(t, a, pathOf(t, decode[orderJSON](t, r).Authorizations[0]), nil)
				e.wantStatus(t, az, http.StatusOK)
				got := decode[authzJSON](t, az)
				var types []string
				for _, ch := range got.Challenges {
					types = append(types, ch.Type)
				}
				if !got.Wildcard || got.Identifier.Value != "a.test" || !slices.Equal(types, []string{"dns-01", "dns-account-01"}) {
					t.Errorf("wildcard authorization %s", az.body)
				}
				return r
			}},
		{name: "ok/profile", status: http.StatusCreated, opts: []func(*Config){profiles},
			run: orderWith(map[string]any{"identifiers": idents("a.test"), "profile": "short"}),
			check: func(t *testing.T, e *env, r *resp) {
				if p := decode[orderJSON](t, r).Profile; p != "short" {
					t.Errorf("profile %q", p)
				}
			}},
		{name: "ok/not-before-not-after", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				return orderWith(validity(ts(e, time.Hour), ts(e, 48*time.Hour)))(t, e)
			},
			check: func(t *testing.T, e *env, r *resp) {
				o := decode[orderJSON](t, r)
				if o.NotBefore != ts(e, time.Hour) || o.NotAfter != ts(e, 48*time.Hour) {
					t.Errorf("validity %s .. %s", o.NotBefore, o.NotAfter)
				}
			}},
		{name: "ok/ready-at-once-with-pre-authorization", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				r := e.post(t, a, "/acme/new-authz", map[string]any{"identifier": Identifier{"dns", "a.test"}})
				e.wantStatus(t, r, http.StatusCreated)
				e.wantStatus(t, e.post(t, a, e.challengeOf(t, a, pathOf(t, r.h.Get("Location")), "http-01"), map[string]any{}), http.StatusOK)
				o := e.post(t, a, newOrderPath, orderOf("a.test"))
				if got := decode[orderJSON](t, o).Authorizations; len(got) != 1 || got[0] != r.h.Get("Location") {
					t.Errorf("order authorizations %v, want the pre-authorization %s", got, r.h.Get("Location"))
				}
				return o
			},
			check: wantOrder(StatusReady, 1)},
		{name: "ok/valid-authz-reused-when-enabled", status: http.StatusCreated,
			opts: []func(*Config){func(c *Config) { c.ReuseAuthz = true }},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.readyOrder(t, a, "a.test")
				return e.post(t, a, newOrderPath, orderOf("a.test"))
			},
			check: wantOrder(StatusReady, 1)},
		{name: "ok/valid-authz-not-reused-by-default", status: http.StatusCreated,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.readyOrder(t, a, "a.test")
				return e.post(t, a, newOrderPath, orderOf("a.test"))
			},
			check: wantOrder(StatusPending, 1)},
		{name: "fail/no-identifiers", status: http.StatusBadRequest, problem: "malformed", run: orderWith(orderOf())},
		{name: "fail/duplicate-identifier", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(orderOf("a.test", "A.test"))},
		{name: "fail/identifiers-wrong-type", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(`{"identifiers":"a.test"}`)},
		{name: "fail/post-as-get", status: http.StatusBadRequest, problem: "malformed", run: orderWith(nil)},
		{name: "fail/too-many-identifiers", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			opts: []func(*Config){func(c *Config) { c.MaxIdentifiers = 2 }},
			run:  orderWith(orderOf("a.test", "b.test", "c.test"))},
		{name: "fail/bad-dns-name", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			run: orderWith(orderOf("a..test")),
			check: func(t *testing.T, e *env, r *resp) {
				if p := decode[Problem](t, r); p.Identifier == nil || p.Identifier.Value != "a..test" {
					t.Errorf("problem %s does not name the identifier", r.body)
				}
			}},
		{name: "fail/non-ascii-name", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			run: orderWith(orderOf("bücher.test"))},
		{name: "fail/unsupported-type", status: http.StatusBadRequest, problem: "unsupportedIdentifier",
			run: orderWith(map[string]any{"identifiers": []Identifier{{"email", "a@b.test"}}})},
		{name: "fail/several-refused", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			run:   orderWith(map[string]any{"identifiers": []Identifier{{"dns", "ok.test"}, {"dns", "-bad.test"}, {"email", "a@b.test"}}}),
			check: func(t *testing.T, e *env, r *resp) { wantSubproblemCount(t, r, 2) }},
		{name: "fail/all-unsupported", status: http.StatusBadRequest, problem: "unsupportedIdentifier",
			run:   orderWith(map[string]any{"identifiers": []Identifier{{"email", "a@b.test"}, {"uri", "https://b.test"}}}),
			check: wantSubproblems("unsupportedIdentifier", "a@b.test", "https://b.test")},
		{name: "fail/wildcards-disabled", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			opts: []func(*Config){func(c *Config) { c.NoWildcards = true }},
			run:  orderWith(orderOf("a.test", "*.a.test")), check: wantSubproblems("rejectedIdentifier", "*.a.test")},
		{name: "fail/server-policy", status: http.StatusBadRequest, problem: "rejectedIdentifier", opts: []func(*Config){allowOnly},
			run:   orderWith(orderOf("www.allowed.test", "other.test", "192.0.2.9", "198.51.100.1")),
			check: wantSubproblems("rejectedIdentifier", "other.test", "198.51.100.1")},
		{name: "fail/eab-key-allow-list", status: http.StatusBadRequest, problem: "rejectedIdentifier",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.eabKey(t, "k1", func(k *eab.Key) { k.Allow = []string{"team.test"} })
				e.store.mu.Lock()
				acct := e.store.accounts[a.id]
				acct.EABKeyID = "k1"
				e.store.accounts[a.id] = acct
				e.store.mu.Unlock()
				e.wantStatus(t, e.post(t, a, newOrderPath, orderOf("x.team.test")), http.StatusCreated)
				return e.post(t, a, newOrderPath, orderOf("x.team.test", "x.other.test"))
			},
			check: wantSubproblems("rejectedIdentifier", "x.other.test")},
		{name: "fail/invalid-profile", status: http.StatusBadRequest, problem: "invalidProfile",
			run: orderWith(map[string]any{"identifiers": idents("a.test"), "profile": "nope"})},
		{name: "fail/not-before-malformed", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(validity("tomorrow", ""))},
		{name: "fail/not-after-malformed", status: http.StatusBadRequest, problem: "malformed",
			run: orderWith(validity("", "2026-13-01T00:00:00Z"))},
		{name: "fail/not-after-before-not-before", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return orderWith(validity(ts(e, 48*time.Hour), ts(e, time.Hour)))(t, e)
			}},
		{name: "fail/validity-beyond-profile", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return orderWith(validity("", ts(e, 91*24*time.Hour)))(t, e) }},
		{name: "fail/not-before-far-future", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return orderWith(validity(ts(e, 31*24*time.Hour), ""))(t, e) }},
		{name: "fail/not-before-far-past", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return orderWith(validity(ts(e, -25*time.Hour), ""))(t, e) }},
		{name: "fail/pending-authz-cap", status: http.StatusTooManyRequests, problem: "rateLimited",
			opts: []func(*Config){func(c *Config) { c.MaxPendingAuthzs = 2 }},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.newOrder(t, a, "a.test")
				return e.post(t, a, newOrderPath, orderOf("b.test", "c.test"))
			},
			check: wantRetryAfter},
		{name: "fail/orders-per-account-limit", status: http.StatusTooManyRequests, problem: "rateLimited",
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.NewOrderPerAccount = ratelimit.Rule{Name: "newOrder/account", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.newOrder(t, a, "a.test")
				return e.post(t, a, newOrderPath, orderOf("b.test"))
			},
			check: wantRetryAfter},
		{name: "ok/refused-orders-use-no-rate-limit-token", status: http.StatusCreated,
			opts: []func(*Config){withLimits(func(l *ratelimit.Config) {
				l.NewOrderPerAccount = ratelimit.Rule{Name: "newOrder/account", Limit: 1, Window: time.Hour}
			})},
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				bad := []map[string]any{
					{"identifiers": idents("a.test"), "profile": "nonesuch"},
					{"identifiers": idents("a.test"), "notAfter": "2026-13-01T00:00:00Z"},
				}
				for _, payload := range bad {
					if r := e.post(t, a, newOrderPath, payload); r.code != http.StatusBadRequest {
						t.Fatalf("bad newOrder %v: %d %s", payload, r.code, r.body)
					}
				}
				return e.post(t, a, newOrderPath, orderOf("a.test"))
			},
			check: wantOrder(StatusPending, 1)},
		{name: "fail/store-unavailable", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				e.store.failOnce("CreateOrder", fmt.Errorf("insert: %w", ErrUnavailable))
				return e.post(t, a, newOrderPath, orderOf("a.test"))
			},
			check: func(t *testing.T, e *env, r *resp) {
				if len(e.store.orders) != 0 || len(e.store.authzs) != 0 {
					t.Errorf("a failed newOrder left %d orders, %d authorizations", len(e.store.orders), len(e.store.authzs))
				}
			}},
	}
	runCases(t, cases)
}

func wantSubproblemCount(t *testing.T, r *resp, n int) {
	t.Helper()
	if p := decode[Problem](t, r); len(p.Subproblems) != n {
		t.Errorf("%d subproblems, want %d: %s", len(p.Subproblems), n, r.body)
	}
}

func wantRetryAfter(t *testing.T, _ *env, r *resp) {
	t.Helper()
	if r.h.Get("Retry-After") == "" {
		t.Errorf("rateLimited answer without Retry-After (RFC 8555 §6.6)")
	}
}
