package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"golang.org/x/crypto/acme"
)

// TestIssuanceFailures checks that each way issuance can go wrong gets
// exactly the RFC 8555 problem type and status a client acts on.
func TestIssuanceFailures(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newXClient(t, s)
	bob := newXClient(t, s)

	t.Run("fail/wrong-key-authorization", func(t *testing.T) {
		stop := serveHTTP01(t, s, func(token string) string { return token + ".not-the-thumbprint" })
		defer stop()
		err := validateOne(ctx, t, alice, "wrongkey.test", "http-01")
		wantAuthzProblem(t, err, "incorrectResponse", "")
	})
	t.Run("fail/name-does-not-resolve", func(t *testing.T) {
		err := validateOne(ctx, t, alice, "missing.nxdomain.test", "http-01")
		wantAuthzProblem(t, err, "dns", "missing.nxdomain.test")
	})
	t.Run("fail/port-refuses", func(t *testing.T) {
		err := validateOne(ctx, t, alice, "refused.test", "http-01")
		wantAuthzProblem(t, err, "connection", fmt.Sprintf("127.0.0.1:%d", s.HTTPPort))
	})

	// An order that is ready, for the CSR and ownership checks.
	stop := serveHTTP01(t, s, func(token string) string {
		ka, _ := alice.HTTP01ChallengeResponse(token)
		return ka
	})
	order := readyOrder(ctx, t, alice, "ready.test")
	stop()

	t.Run("fail/csr-extra-name", func(t *testing.T) {
		_, _, err := alice.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "ready.test", "extra.test"), true)
		wantACMEError(t, err, "badCSR", http.StatusBadRequest)
	})
	t.Run("fail/csr-account-key", func(t *testing.T) {
		_, _, err := alice.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, alice.Key, "ready.test"), true)
		wantACMEError(t, err, "badCSR", http.StatusBadRequest)
	})
	t.Run("fail/other-account-order", func(t *testing.T) {
		_, err := bob.GetOrder(ctx, order.URI)
		wantACMEError(t, err, "unauthorized", http.StatusForbidden)
		_, _, err = bob.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "ready.test"), true)
		wantACMEError(t, err, "unauthorized", http.StatusForbidden)
	})
	t.Run("fail/finalize-before-ready", func(t *testing.T) {
		pending, err := alice.AuthorizeOrder(ctx, acme.DomainIDs("pending.test"))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = alice.CreateOrderCert(ctx, pending.FinalizeURL, makeCSR(t, nil, "pending.test"), true)
		wantACMEError(t, err, "orderNotReady", http.StatusForbidden)
	})
	t.Run("ok/finalize-then-other-account-certificate", func(t *testing.T) {
		ders, certURL, err := alice.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "ready.test"), true)
		if err != nil {
			t.Fatalf("finalize: %v", err)
		}
		if len(ders) != 2 {
			t.Fatalf("got %d certificates, want leaf and intermediate", len(ders))
		}
		_, err = bob.FetchCert(ctx, certURL, true)
		wantACMEError(t, err, "unauthorized", http.StatusForbidden)
		_, _, err = alice.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "ready.test"), true)
		wantACMEError(t, err, "orderNotReady", http.StatusForbidden)
	})
	t.Run("fail/unknown-profile", func(t *testing.T) {
		client, _ := newLegoClient(t, s, "ec")
		_, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"profile.test"}, Profile: "no-such-profile"})
		wantProblem(t, err, "invalidProfile", http.StatusBadRequest)
	})
}

// newXClient registers an x/crypto/acme client with an ECDSA key.
func newXClient(t testing.TB, s *Server) *acme.Client {
	t.Helper()
	c := &acme.Client{Key: newAccountKey(t, "ec"), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	if _, err := c.Register(context.Background(), &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	return c
}

// serveHTTP01 answers every http-01 request on the server's validation
// port with body(token), until the returned stop is called.
func serveHTTP01(t testing.TB, s *Server, body func(token string) string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		fmt.Fprint(w, body(token))
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }
}

// validateOne makes an order for name, answers the challenge of the given
// type and waits for the authorization's outcome.
func validateOne(ctx context.Context, t testing.TB, c *acme.Client, name, typ string) error {
	t.Helper()
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	authz, err := c.GetAuthorization(ctx, order.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range authz.Challenges {
		if ch.Type == typ {
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatalf("accept: %v", err)
			}
			_, err := c.WaitAuthorization(ctx, authz.URI)
			if err != nil {
				// The order follows its authorization (RFC 8555 §7.1.6).
				if o, gerr := c.GetOrder(ctx, order.URI); gerr == nil && o.Status != acme.StatusInvalid {
					t.Fatalf("order is %s after its authorization failed, want invalid", o.Status)
				}
			}
			return err
		}
	}
	t.Fatalf("no %s challenge offered for %s", typ, name)
	return nil
}

// readyOrder creates an order for name and validates it over http-01
// (the caller serves the key authorization).
func readyOrder(ctx context.Context, t testing.TB, c *acme.Client, name string) *acme.Order {
	t.Helper()
	if err := validateOne(ctx, t, c, name, "http-01"); err != nil {
		t.Fatalf("validate %s: %v", name, err)
	}
	// validateOne made its own order; the order for the same name of the
	// same account needs its own authorization, so make it ready too.
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range order.AuthzURLs {
		a, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status == acme.StatusValid {
			continue
		}
		for _, ch := range a.Challenges {
			if ch.Type == "http-01" {
				if _, err := c.Accept(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	// RFC 8555 §7.1.6: ready in the same step as the last authorization.
	o, err := c.GetOrder(ctx, order.URI)
	if err != nil || o.Status != acme.StatusReady {
		t.Fatalf("order after validation: %v status %v, want ready", err, o.Status)
	}
	return o
}

// makeCSR builds a CSR for names, signed by key (a fresh P-256 key if nil).
func makeCSR(t testing.TB, key crypto.Signer, names ...string) []byte {
	t.Helper()
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// wantACMEError checks an x/crypto/acme error's problem type and status.
func wantACMEError(t testing.TB, err error, typ string, status int) {
	t.Helper()
	var ae *acme.Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want ACME problem %s", err, typ)
	}
	if ae.ProblemType != "urn:ietf:params:acme:error:"+typ || ae.StatusCode != status {
		t.Fatalf("got %s (%d) %q, want %s (%d)", ae.ProblemType, ae.StatusCode, ae.Detail, typ, status)
	}
}

// wantAuthzProblem checks that a failed authorization carries a challenge
// problem of the type, whose detail mentions want.
func wantAuthzProblem(t testing.TB, err error, typ, want string) {
	t.Helper()
	var ae *acme.AuthorizationError
	if !errors.As(err, &ae) || len(ae.Errors) == 0 {
		t.Fatalf("got %v, want an invalid authorization with %s", err, typ)
	}
	var pe *acme.Error
	if !errors.As(ae.Errors[0], &pe) {
		t.Fatalf("authorization error %v carries no problem", ae.Errors[0])
	}
	if pe.ProblemType != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("problem %s %q, want %s", pe.ProblemType, pe.Detail, typ)
	}
	if !strings.Contains(pe.Detail, want) {
		t.Fatalf("detail %q does not mention %q", pe.Detail, want)
	}
}
