package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// pemCerts parses every CERTIFICATE block of a PEM chain.
func pemCerts(t *testing.T, chain []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := chain; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			t.Fatalf("PEM block %q in the chain", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("no certificate in %q", chain)
	}
	return out
}

func firstCert(t *testing.T, chain []byte) *x509.Certificate { return pemCerts(t, chain)[0] }

func bigOne() *big.Int { return big.NewInt(1) }

// TestHandlerCertificate covers the certificate download (RFC 8555 §7.4.2).
func TestHandlerCertificate(t *testing.T) {
	runCases(t, []hcase{
		{name: "ok/pem-chain", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				return e.post(t, a, e.issue(t, a, "a.test").certPath, nil)
			},
			check: func(t *testing.T, e *env, r *resp) {
				if ct := r.h.Get("Content-Type"); ct != "application/pem-certificate-chain" {
					t.Errorf("Content-Type %q", ct)
				}
				chain := pemCerts(t, r.body)
				if len(chain) != 2 || !bytes.Equal(chain[1].Raw, e.ca.Intermediate().Raw) {
					t.Fatalf("chain of %d, want leaf then the intermediate", len(chain))
				}
				roots, inters := x509.NewCertPool(), x509.NewCertPool()
				roots.AddCert(e.ca.Root())
				inters.AddCert(chain[1])
				if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "a.test",
					CurrentTime: e.clock.Now()}); err != nil {
					t.Errorf("leaf does not verify to the root: %v", err)
				}
			}},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				is := e.issue(t, e.register(t), "a.test")
				return e.post(t, e.register(t), is.certPath, nil)
			}},
		{name: "fail/unknown-certificate", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), "/acme/cert/nope", nil) }},
	})
}

const revokePath = "/acme/revoke-cert"

func revokeBody(der []byte, reason *int) map[string]any {
	m := map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(der)}
	if reason != nil {
		m["reason"] = *reason
	}
	return m
}

func reason(n int) *int { return &n }

// revokeBy issues a certificate to a new account and has who revoke it:
// "account" (kid), "key" (the certificate's key as jwk), "other-account"
// or "other-key".
func revokeBy(who string, why *int) func(t *testing.T, e *env) *resp {
	return func(t *testing.T, e *env) *resp {
		a := e.register(t)
		is := e.issue(t, a, "a.test")
		body := revokeBody(is.leaf.Raw, why)
		switch who {
		case "account":
			return e.post(t, a, revokePath, body)
		case "key":
			return e.postJWK(t, is.key, revokePath, body)
		case "other-account":
			return e.post(t, e.register(t), revokePath, body)
		default:
			return e.postJWK(t, newKey(t), revokePath, body)
		}
	}
}

// wantRevoked checks the stored certificate is revoked with reason code
// and that the CRL was asked to republish.
func wantRevoked(code int) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		for _, c := range e.store.certs {
			if !c.Revoked || c.RevocationReason != code || c.RevokedAt == nil {
				t.Errorf("certificate revoked=%v reason=%d, want revoked with %d", c.Revoked, c.RevocationReason, code)
			}
		}
		if n := e.revokes.Load(); n != 1 {
			t.Errorf("OnRevoke (CRL republication) called %d times, want 1", n)
		}
	}
}

func wantNotRevoked(t *testing.T, e *env, _ *resp) {
	t.Helper()
	for _, c := range e.store.certs {
		if c.Revoked {
			t.Errorf("certificate was revoked by a refused request")
		}
	}
	if n := e.revokes.Load(); n != 0 {
		t.Errorf("OnRevoke called %d times after a refused request", n)
	}
}

// TestHandlerRevokeCert covers revokeCert (RFC 8555 §7.6).
func TestHandlerRevokeCert(t *testing.T) {
	runCases(t, []hcase{
		{name: "ok/by-account", status: http.StatusOK, run: revokeBy("account", nil), check: wantRevoked(0)},
		{name: "ok/by-certificate-key", status: http.StatusOK, run: revokeBy("key", reason(1)), check: wantRevoked(1)},
		{name: "ok/reason-superseded", status: http.StatusOK, run: revokeBy("account", reason(4)), check: wantRevoked(4)},
		{name: "ok/by-account-authorized-for-every-name", status: http.StatusOK,
			run: func(t *testing.T, e *env) *resp {
				// RFC 8555 §7.6: "an account that holds authorizations for
				// all of the identifiers in the certificate".
				is := e.issue(t, e.register(t), "a.test", "*.b.test")
				other := e.register(t)
				e.readyOrder(t, other, "a.test")
				e.readyOrder(t, other, "*.b.test")
				return e.post(t, other, revokePath, revokeBody(is.leaf.Raw, reason(5)))
			},
			check: wantRevoked(5)},
		{name: "fail/by-account-authorized-for-some-names", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				is := e.issue(t, e.register(t), "a.test", "b.test")
				other := e.register(t)
				e.readyOrder(t, other, "a.test")
				return e.post(t, other, revokePath, revokeBody(is.leaf.Raw, nil))
			},
			check: wantNotRevoked},
		{name: "fail/by-account-with-expired-authorizations", status: http.StatusForbidden, problem: "unauthorized",
			run: func(t *testing.T, e *env) *resp {
				is := e.issue(t, e.register(t), "a.test")
				other := e.register(t)
				e.readyOrder(t, other, "a.test")
				e.clock.Advance(31 * 24 * time.Hour) // valid authorizations last 30 days
				return e.post(t, other, revokePath, revokeBody(is.leaf.Raw, nil))
			},
			check: wantNotRevoked},
		{name: "fail/already-revoked", status: http.StatusBadRequest, problem: "alreadyRevoked",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				is := e.issue(t, a, "a.test")
				e.wantStatus(t, e.post(t, a, revokePath, revokeBody(is.leaf.Raw, nil)), http.StatusOK)
				return e.postJWK(t, is.key, revokePath, revokeBody(is.leaf.Raw, reason(1)))
			}},
		{name: "fail/reason-ca-compromise", status: http.StatusBadRequest, problem: "badRevocationReason",
			run: revokeBy("account", reason(2)), check: wantNotRevoked},
		{name: "fail/reason-certificate-hold", status: http.StatusBadRequest, problem: "badRevocationReason",
			run: revokeBy("account", reason(6)), check: wantNotRevoked},
		{name: "fail/reason-unknown", status: http.StatusBadRequest, problem: "badRevocationReason",
			run: revokeBy("account", reason(11)), check: wantNotRevoked},
		{name: "fail/other-account", status: http.StatusForbidden, problem: "unauthorized",
			run: revokeBy("other-account", nil), check: wantNotRevoked},
		{name: "fail/other-key", status: http.StatusForbidden, problem: "unauthorized",
			run: revokeBy("other-key", nil), check: wantNotRevoked},
		{name: "fail/certificate-not-base64url", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), revokePath, map[string]any{"certificate": "MII+/="})
			}},
		{name: "fail/certificate-not-der", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), revokePath, revokeBody([]byte("junk"), nil))
			}},
		{name: "fail/certificate-unknown", status: http.StatusNotFound, problem: "malformed",
			run: func(t *testing.T, e *env) *resp {
				return e.post(t, e.register(t), revokePath, revokeBody(selfSigned(t), nil))
			}},
		{name: "fail/post-as-get", status: http.StatusBadRequest, problem: "malformed",
			run: func(t *testing.T, e *env) *resp { return e.post(t, e.register(t), revokePath, nil) }},
		{name: "fail/store-unavailable", status: http.StatusServiceUnavailable, problem: "serverInternal",
			run: func(t *testing.T, e *env) *resp {
				a := e.register(t)
				is := e.issue(t, a, "a.test")
				e.store.failOnce("RevokeCertificate", fmt.Errorf("update: %w", ErrUnavailable))
				return e.post(t, a, revokePath, revokeBody(is.leaf.Raw, nil))
			},
			check: wantNotRevoked},
	})
}
