package acme

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/jws"
)

const workloadID = "spiffe://corp.example/payments/sender"

func withTrustDomain(c *Config) {
	c.TrustDomain = spiffeid.RequireTrustDomainFromString("corp.example")
}

// registerWorkload registers an account with an EAB key that binds the
// workload payments/sender (key ID kid-w).
func (e *env) registerWorkload(t *testing.T) *account {
	t.Helper()
	k := e.eabKey(t, "kid-w", func(k *eab.Key) { k.Workload, k.Reusable = "/payments/sender", true })
	key := newKey(t)
	r := e.postJWK(t, key, newAccountPath, map[string]any{"termsOfServiceAgreed": true,
		"externalAccountBinding": eabBinding(t, key, k.HMACKey, k.ID, testBase+newAccountPath)})
	e.wantStatus(t, r, http.StatusCreated)
	loc := r.h.Get("Location")
	return &account{key: key, kid: loc, id: lastSegment(loc)}
}

func (e *env) revokeEABKey(id string) {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	k := e.store.eabKeys[id]
	k.Revoked = true
	e.store.eabKeys[id] = k
}

// csrWithURI is a CSR for names that also asks for the URI SAN uri.
func csrWithURI(t *testing.T, uri string, names ...string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names, URIs: []*url.URL{u}}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

// wantWorkloadCert checks that the order in r issued a certificate whose
// one URI SAN is the account's identity, as go-spiffe reads an X509-SVID.
func wantWorkloadCert(t *testing.T, e *env, r *resp) {
	t.Helper()
	o := decode[orderJSON](t, r)
	c, ok := e.store.certs[lastSegment(o.Certificate)]
	if o.Status != StatusValid || !ok {
		t.Fatalf("order %s: no certificate stored", r.body)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil || id.String() != workloadID || c.Identity != workloadID {
		t.Fatalf("URI SANs %v (%v), stored identity %q; want exactly %s", leaf.URIs, err, c.Identity, workloadID)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "a.test" {
		t.Fatalf("DNS names %v, want the order's", leaf.DNSNames)
	}
	if ev := e.store.audit[len(e.store.audit)-1]; !strings.Contains(ev.Detail, workloadID) {
		t.Errorf("audit detail %q does not name the identity", ev.Detail)
	}
}

// TestHandlerWorkloadIdentity: the identity an EAB key binds is the
// account's for good and goes into each certificate as its one URI SAN;
// the CSR cannot ask for one; revoking the key stops issuance at newOrder
// and at finalize, each refusal with a fresh nonce and no state change.
func TestHandlerWorkloadIdentity(t *testing.T) {
	td := []func(*Config){withTrustDomain}
	runCases(t, []hcase{
		{name: "ok/identity-from-the-binding", status: http.StatusOK, opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				if got := e.store.accounts[a.id].Workload; got != "/payments/sender" {
					t.Fatalf("account workload %q, want the key's", got)
				}
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: wantWorkloadCert},
		{name: "ok/kept-across-key-rollover", status: http.StatusOK, opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				nk := newKey(t)
				e.wantStatus(t, e.post(t, a, keyChangePath, innerKeyChange(t, nk, jws.Header{}, a.kid, a.key.Public())), http.StatusOK)
				a.key = nk
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: wantWorkloadCert},
		{name: "ok/plain-account-no-uri", status: http.StatusOK, opts: td,
			run: finalizeWith([]string{"a.test"}, goodCSR("", "a.test")),
			check: func(t *testing.T, e *env, r *resp) {
				c := e.store.certs[lastSegment(decode[orderJSON](t, r).Certificate)]
				leaf, _ := x509.ParseCertificate(c.DER)
				if len(leaf.URIs) != 0 || c.Identity != "" {
					t.Fatalf("an account without a workload got URIs %v", leaf.URIs)
				}
			}},
		{name: "fail/csr-asks-for-own-uri", status: http.StatusBadRequest, problem: "badCSR", opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize",
					map[string]string{"csr": csrWithURI(t, "spiffe://corp.example/admin", "a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if p := decode[Problem](t, r); !strings.Contains(p.Detail, "external account binding") {
					t.Errorf("detail %q does not say where the identity comes from", p.Detail)
				}
				wantStillReady(t, e, r)
				if len(e.store.certs) != 0 || len(e.store.audit) != 0 {
					t.Errorf("a refused CSR left %d certificates, %d audit events", len(e.store.certs), len(e.store.audit))
				}
			}},
		{name: "fail/workload-csr-asks-for-its-own-uri-too", status: http.StatusBadRequest, problem: "badCSR", opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				return e.post(t, a, e.readyOrder(t, a, "a.test")+"/finalize",
					map[string]string{"csr": csrWithURI(t, workloadID, "a.test")})
			},
			check: wantStillReady},
		{name: "fail/key-revoked-before-order", status: http.StatusForbidden, problem: "unauthorized", opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				e.revokeEABKey("kid-w")
				return e.post(t, a, newOrderPath, map[string]any{"identifiers": idents("a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if len(e.store.orders) != 0 {
					t.Errorf("an order was created for a revoked binding")
				}
			}},
		{name: "fail/key-revoked-before-finalize", status: http.StatusForbidden, problem: "unauthorized", opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				orderPath := e.readyOrder(t, a, "a.test")
				e.revokeEABKey("kid-w")
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if p := decode[Problem](t, r); !strings.Contains(p.Detail, "revoked") {
					t.Errorf("detail %q", p.Detail)
				}
				wantStillReady(t, e, r)
				if len(e.store.certs) != 0 {
					t.Errorf("a certificate was issued after the key was revoked")
				}
			}},
		{name: "fail/account-deactivated-before-finalize", status: http.StatusForbidden, problem: "unauthorized", opts: td,
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				orderPath := e.readyOrder(t, a, "a.test")
				e.wantStatus(t, e.post(t, a, "/acme/account/"+a.id, map[string]string{"status": "deactivated"}), http.StatusOK)
				return e.post(t, a, orderPath+"/finalize", map[string]string{"csr": csr(t, newKey(t), "", "a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if len(e.store.certs) != 0 {
					t.Errorf("a deactivated account got a certificate")
				}
			}},
		{name: "fail/no-trust-domain", status: http.StatusInternalServerError, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a := e.registerWorkload(t)
				return e.post(t, a, newOrderPath, map[string]any{"identifiers": idents("a.test")})
			},
			check: func(t *testing.T, e *env, r *resp) {
				if p := decode[Problem](t, r); !strings.Contains(p.Detail, "--trust-domain") {
					t.Errorf("detail %q does not tell the operator what to set", p.Detail)
				}
				if len(e.store.orders) != 0 {
					t.Errorf("an order was created")
				}
			}},
	})
}

// TestHandlerSPIFFEBundle: /spiffe/bundle is the roots of
// /roots/bundle.pem as a SPIFFE bundle go-spiffe parses, with a sequence
// number and refresh hint; without a trust domain there is none.
func TestHandlerSPIFFEBundle(t *testing.T) {
	e := newEnv(t, withTrustDomain)
	r := e.do(t, http.MethodGet, "/spiffe/bundle", "", nil)
	if r.code != http.StatusOK || r.h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /spiffe/bundle: %d %q %s", r.code, r.h.Get("Content-Type"), r.body)
	}
	e.wantNonce(t, r) // none on a GET
	td := spiffeid.RequireTrustDomainFromString("corp.example")
	b, err := spiffebundle.Parse(td, r.body)
	if err != nil {
		t.Fatalf("go-spiffe cannot parse the bundle: %v\n%s", err, r.body)
	}
	roots := b.X509Authorities()
	if len(roots) != 1 || !roots[0].Equal(e.ca.Root()) {
		t.Fatalf("bundle authorities %d, want the CA root", len(roots))
	}
	if seq, ok := b.SequenceNumber(); !ok || seq != e.ca.BundleSequence() {
		t.Errorf("spiffe_sequence %d (set %v), want %d", seq, ok, e.ca.BundleSequence())
	}
	if hint, ok := b.RefreshHint(); !ok || hint != spiffeRefreshHint {
		t.Errorf("spiffe_refresh_hint %s (set %v)", hint, ok)
	}
	if strings.Contains(string(r.body), `"kid"`) || !strings.Contains(string(r.body), `"use":"x509-svid"`) {
		t.Errorf("X509-SVID §6.1: use x509-svid and no kid: %s", r.body)
	}

	none := newEnv(t)
	r = none.do(t, http.MethodGet, "/spiffe/bundle", "", nil)
	if r.code != http.StatusNotFound || !strings.Contains(string(r.body), "--trust-domain") {
		t.Fatalf("without a trust domain: %d %s", r.code, r.body)
	}
}
