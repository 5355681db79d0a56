package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/certmint/certmint/ca"
)

// finalizeWith readies an order for names and finalizes it with the CSR
// that csrFn builds.
func finalizeWith(names []string, csrFn func(t *testing.T, a *account) string) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a := e.register(t)
		orderPath := e.readyOrder(t, a, names...)
		return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csrFn(t, a)})
	}
}

// finalizeOrdered places the newOrder that payload gives (for a.test),
// answers its challenge and finalizes it.
func finalizeOrdered(payload func(e *env) map[string]any) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a := e.register(t)
		r := e.post(t, a, newOrderPath, payload(e))
		e.wantStatus(t, r, http.StatusCreated)
		o := decode[orderJSON](t, r)
		e.wantStatus(t, e.post(t, a, e.challengeOf(t, a, pathOf(t, o.Authorizations[0]), "http-01"), map[string]any{}), http.StatusOK)
		return e.post(t, a, pathOf(t, o.Finalize), map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
	}
}

// goodCSR is a CSR for names with a fresh certificate key.
func goodCSR(cn string, names ...string) func(t *testing.T, a *account) string {
	return func(t *testing.T, _ *account) string { return csr(t, newKey(t), cn, names...) }
}

// wantIssued checks a successful finalize: the order is valid with a
// certificate URL, and the certificate stored names the order's names.
func wantIssued(names ...string) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		o := decode[orderJSON](t, r)
		if o.Status != StatusValid || o.Certificate == "" {
			t.Fatalf("order %s, want valid with a certificate", r.body)
		}
		cert, ok := e.store.certs[lastSegment(o.Certificate)]
		if !ok {
			t.Fatalf("certificate %s is not stored", o.Certificate)
		}
		leaf, err := x509.ParseCertificate(cert.DER)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append([]string(nil), leaf.DNSNames...), ipStrings(leaf.IPAddresses)...)
		if slices.Sort(got); !slices.Equal(got, sorted(names)) {
			t.Errorf("certificate names %v, want %v", got, names)
		}
		if len(e.store.audit) != 1 {
			t.Errorf("%d audit events for one issuance", len(e.store.audit))
		}
	}
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// wantStillReady checks that a refused finalize left the order ready for
// a corrected CSR (RFC 8555 §7.4).
func wantStillReady(t *testing.T, e *env, _ *resp) {
	t.Helper()
	for _, o := range e.store.orders {
		if o.Status != StatusReady {
			t.Errorf("order is %s after a refused finalize, want ready", o.Status)
		}
	}
}

func badCSRCase(name string, names []string, csrFn func(t *testing.T, a *account) string) hcase {
	return hcase{name: name, status: http.StatusBadRequest, problem: "badCSR", run: finalizeWith(names, csrFn), check: wantStillReady}
}

// TestHandlerFinalize covers finalize (RFC 8555 §7.4).
func TestHandlerFinalize(t *testing.T) {
	one := []string{"a.test"}
	short := ca.Profile{Name: "short", Validity: 7 * 24 * time.Hour, ExtKeyUsage: ca.DefaultProfile().ExtKeyUsage}
	runCases(t, []hcase{
		{name: "ok/finalize", status: http.StatusOK, run: finalizeWith([]string{"a.test", "b.test"}, goodCSR("", "a.test", "b.test")),
			check: func(t *testing.T, e *env, r *resp) {
				wantIssued("a.test", "b.test")(t, e, r)
				if loc, o := r.h.Get("Location"), decode[orderJSON](t, r); loc+"/finalize" != o.Finalize {
					t.Errorf("Location %q, want the order URL (finalize %q)", loc, o.Finalize)
				}
			}},
		{name: "ok/cn-only", status: http.StatusOK, run: finalizeWith(one, goodCSR("A.test")), check: wantIssued("a.test")},
		{name: "ok/dns-and-ip", status: http.StatusOK, run: finalizeWith([]string{"a.test", "192.0.2.1"}, goodCSR("a.test", "a.test", "192.0.2.1")),
			check: wantIssued("a.test", "192.0.2.1")},
		{name: "ok/order-validity", status: http.StatusOK,
			run: finalizeOrdered(func(e *env) map[string]any {
				return map[string]any{"identifiers": idents("a.test"),
					"notBefore": timestamp(e.clock.Now().Add(time.Hour)), "notAfter": timestamp(e.clock.Now().Add(49 * time.Hour))}
			}),
			check: func(t *testing.T, e *env, r *resp) {
				c := e.store.certs[lastSegment(decode[orderJSON](t, r).Certificate)]
				if got := c.NotAfter.Sub(c.NotBefore); got != 48*time.Hour || !c.NotBefore.Equal(e.clock.Now().Add(time.Hour)) {
					t.Errorf("certificate %s .. %s, want the order's notBefore/notAfter", c.NotBefore, c.NotAfter)
				}
			}},
		{name: "ok/profile-validity", status: http.StatusOK,
			opts: []func(*Config){func(c *Config) { c.Profiles = map[string]ca.Profile{"default": ca.DefaultProfile(), "short": short} }},
			run: finalizeOrdered(func(*env) map[string]any {
				return map[string]any{"identifiers": idents("a.test"), "profile": "short"}
			}),
			check: func(t *testing.T, e *env, r *resp) {
				c := e.store.certs[lastSegment(decode[orderJSON](t, r).Certificate)]
				if got := c.NotAfter.Sub(c.NotBefore); got > 7*24*time.Hour+time.Hour || c.Profile != "short" {
					t.Errorf("certificate lifetime %s profile %q, want the short profile's 7 days", got, c.Profile)
				}
			}},
		{name: "ok/serial-collision-retried", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				orderPath := e.readyOrder(t, a, "a.test")
				// The first serial exists already: the order stays ready and
				// the server signs again with a new serial.
				e.store.failOnce("CompleteFinalize", fmt.Errorf("serial: %w", ErrConflict))
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: wantIssued("a.test")},
		{name: "fail/order-pending", status: http.StatusForbidden, problem: "orderNotReady",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				orderPath, _ := e.newOrder(t, a, "a.test")
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			}},
		{name: "fail/order-already-valid", status: http.StatusForbidden, problem: "orderNotReady",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				is := e.issue(t, a, "a.test")
				return e.post(t, a, is.orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			}},
		{name: "fail/order-expired", status: http.StatusForbidden, problem: "orderNotReady",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				orderPath := e.readyOrder(t, a, "a.test")
				e.clock.Advance(25 * time.Hour)
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			}},
		{name: "fail/order-invalid", status: http.StatusForbidden, problem: "orderNotReady",
			run: func(t *testing.T, e *env) *resp {
				e.val.failWith("connection", "refused")
				a, orderPath, _, ch := e.challengeSetup(t, "a.test", "http-01")
				e.wantStatus(t, e.post(t, a, ch, map[string]any{}), http.StatusOK)
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			}},
		badCSRCase("fail/csr-not-base64url", one, func(*testing.T, *account) string { return "MII+/=" }),
		badCSRCase("fail/csr-not-der", one, func(*testing.T, *account) string { return base64.RawURLEncoding.EncodeToString([]byte("junk")) }),
		badCSRCase("fail/csr-bad-signature", one, func(t *testing.T, _ *account) string {
			der, _ := base64.RawURLEncoding.DecodeString(csr(t, newKey(t), "", "a.test"))
			der[len(der)-1] ^= 0xff
			return base64.RawURLEncoding.EncodeToString(der)
		}),
		badCSRCase("fail/csr-missing-name", []string{"a.test", "b.test"}, goodCSR("", "a.test")),
		badCSRCase("fail/csr-extra-name", one, goodCSR("", "a.test", "b.test")),
		badCSRCase("fail/csr-cn-not-ordered", one, goodCSR("c.test", "a.test")),
		badCSRCase("fail/csr-ip-as-dns-name", []string{"192.0.2.1"}, func(t *testing.T, _ *account) string {
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"192.0.2.1"}}, newKey(t))
			if err != nil {
				t.Fatal(err)
			}
			return base64.RawURLEncoding.EncodeToString(der)
		}),
		badCSRCase("fail/csr-email", one, func(t *testing.T, _ *account) string {
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.test"}, EmailAddresses: []string{"a@a.test"}}, newKey(t))
			if err != nil {
				t.Fatal(err)
			}
			return base64.RawURLEncoding.EncodeToString(der)
		}),
		badCSRCase("fail/csr-account-key", one, func(t *testing.T, a *account) string { return csr(t, a.key, "", "a.test") }),
		badCSRCase("fail/csr-key-p521", one, func(t *testing.T, _ *account) string {
			k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return csr(t, k, "", "a.test")
		}),
		{name: "fail/csr-missing", status: http.StatusBadRequest, problem: "badCSR",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize", map[string]string{})
			}},
		{name: "fail/post-as-get", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize", nil)
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				orderPath := e.readyOrder(t, e.register(t), "a.test")
				return e.post(t, e.register(t), orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: wantStillReady},
		{name: "fail/unknown-order", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), "/acme/order/nope/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			}},
		{name: "fail/store-unavailable", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				orderPath := e.readyOrder(t, a, "a.test")
				e.store.failOnce("CompleteFinalize", fmt.Errorf("commit: %w", ErrUnavailable))
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				wantStillReady(t, e, r)
				if len(e.store.certs) != 0 {
					t.Errorf("%d certificates stored after a failed finalize", len(e.store.certs))
				}
			}},
	})
}

// selfSigned is a certificate this CA never issued.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "a.test"}, DNSNames: []string{"a.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
