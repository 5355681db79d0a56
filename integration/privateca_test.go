package integration

import (
	"context"
	"crypto"
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
	"golang.org/x/crypto/acme"

	"github.com/certmint/certmint/acme/validate"
)

// eabCreate runs `certmint admin eab create` on the server's data and
// returns the KID and HMAC lines it prints.
func eabCreate(t testing.TB, s *Server, args ...string) (kid, hmac string) {
	t.Helper()
	out, stderr, code := runCLI(t, nil, append([]string{"admin", "eab", "create", "--data", s.Data}, args...)...)
	if code != 0 {
		t.Fatalf("eab create: exit %d: %s", code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "KID="); ok {
			kid = v
		}
		if v, ok := strings.CutPrefix(line, "HMAC="); ok {
			hmac = v
		}
	}
	if kid == "" || hmac == "" {
		t.Fatalf("eab create printed no KID/HMAC lines:\n%s", out)
	}
	return kid, hmac
}

// newLegoEABClient registers a lego client with an external account
// binding.
func newLegoEABClient(t testing.TB, s *Server, kid, hmac string) (*lego.Client, error) {
	t.Helper()
	user := &legoUser{key: newAccountKey(t, "ec")}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = s.DirectoryURL()
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}}
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(s.HTTPPort))); err != nil {
		t.Fatal(err)
	}
	reg, err := client.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmac})
	user.reg = reg
	return client, err
}

// TestExternalAccountBinding: with --eab-required, lego registers with a
// key from `admin eab create`; without a binding newAccount is refused; a
// single-use key works once; a key limited to a suffix cannot order
// outside it.
func TestExternalAccountBinding(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--eab-required"}})

	t.Run("fail/no-binding", func(t *testing.T) {
		user := &legoUser{key: newAccountKey(t, "ec")}
		cfg := lego.NewConfig(user)
		cfg.CADirURL = s.DirectoryURL()
		cfg.HTTPClient = s.HTTPClient()
		client, err := lego.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !client.GetExternalAccountRequired() {
			t.Fatal("directory does not say externalAccountRequired")
		}
		_, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
		wantProblem(t, err, "externalAccountRequired", http.StatusUnauthorized)
	})
	t.Run("ok/lego-eab", func(t *testing.T) {
		kid, hmac := eabCreate(t, s, "--label", "team-a")
		client, err := newLegoEABClient(t, s, kid, hmac)
		if err != nil {
			t.Fatalf("register with EAB: %v", err)
		}
		res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"eab.test"}, Bundle: true})
		if err != nil {
			t.Fatalf("obtain: %v", err)
		}
		checkCertificate(t, s, res.Certificate, []string{"eab.test"}, 90*24*time.Hour)
		// Single use: a second account cannot bind with the same key.
		_, err = newLegoEABClient(t, s, kid, hmac)
		wantProblem(t, err, "unauthorized", http.StatusForbidden)
	})
	t.Run("fail/wrong-hmac", func(t *testing.T) {
		kid, _ := eabCreate(t, s)
		_, err := newLegoEABClient(t, s, kid, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		wantProblem(t, err, "unauthorized", http.StatusForbidden)
	})
	t.Run("fail/suffix-limited-key", func(t *testing.T) {
		kid, hmac := eabCreate(t, s, "--allow", "*.payments.internal", "--reusable")
		client, err := newLegoEABClient(t, s, kid, hmac)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"api.payments.internal"}}); err != nil {
			t.Fatalf("name inside the suffix: %v", err)
		}
		_, err = client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"api.billing.internal"}})
		wantProblem(t, err, "rejectedIdentifier", http.StatusBadRequest)
	})
}

// TestPolicySubproblems: a server-wide deny list refuses an order with
// one subproblem per refused identifier.
func TestPolicySubproblems(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--deny-domain", "corp.internal", "--deny-ip", "10.0.0.0/8", "--no-wildcards"}})
	c := newXClient(t, s)
	ctx := context.Background()
	_, err := c.AuthorizeOrder(ctx, []acme.AuthzID{{Type: "dns", Value: "a.corp.internal"}, {Type: "ip", Value: "10.1.2.3"},
		{Type: "dns", Value: "*.wild.test"}, {Type: "dns", Value: "fine.test"}})
	var ae *acme.Error
	if !asACME(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" || len(ae.Subproblems) != 3 {
		t.Fatalf("got %v, want rejectedIdentifier with 3 subproblems", err)
	}
	for _, sp := range ae.Subproblems {
		if sp.Identifier == nil || sp.Type != "urn:ietf:params:acme:error:rejectedIdentifier" {
			t.Fatalf("subproblem %+v lacks its identifier or type", sp)
		}
	}
}

// TestPreAuthorization: newAuthz, validate, then an order for the name is
// ready at once (RFC 8555 §7.4.1).
func TestPreAuthorization(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newXClient(t, s)
	stop := serveHTTP01(t, s, func(token string) string { ka, _ := c.HTTP01ChallengeResponse(token); return ka })
	defer stop()
	authz, err := c.Authorize(ctx, "preauth.test") // x/crypto uses newAuthz when offered
	if err != nil {
		t.Fatalf("newAuthz: %v", err)
	}
	for _, ch := range authz.Challenges {
		if ch.Type == "http-01" {
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.WaitAuthorization(ctx, authz.URI); err != nil {
		t.Fatalf("pre-authorization did not validate: %v", err)
	}
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs("preauth.test"))
	if err != nil {
		t.Fatal(err)
	}
	if order.Status != acme.StatusReady || order.AuthzURLs[0] != authz.URI {
		t.Fatalf("order after pre-authorization: %s %v, want ready with %s", order.Status, order.AuthzURLs, authz.URI)
	}
	if _, _, err := c.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "preauth.test"), true); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	// Wildcards cannot be pre-authorized.
	_, err = c.Authorize(ctx, "*.preauth.test")
	wantACMEError(t, err, "rejectedIdentifier", http.StatusBadRequest)
}

// TestDNSAccount01: two accounts validate the same name at the same time,
// each with its own TXT record under its account label.
func TestDNSAccount01(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 2; i++ {
		c := newXClient(t, s)
		acct, err := c.GetReg(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		order, err := c.AuthorizeOrder(ctx, acme.DomainIDs("shared.test"))
		if err != nil {
			t.Fatal(err)
		}
		authz, err := c.GetAuthorization(ctx, order.AuthzURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		var ch *acme.Challenge
		for _, x := range authz.Challenges {
			if x.Type == "dns-account-01" {
				ch = x
			}
		}
		if ch == nil {
			t.Fatal("no dns-account-01 challenge offered")
		}
		value, _ := c.DNS01ChallengeRecord(ch.Token)
		s.DNS.SetTXT("_"+validate.DNSAccountLabel(acct.URI)+"._acme-challenge.shared.test", value)
		if _, err := c.Accept(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitAuthorization(ctx, authz.URI); err != nil {
			t.Fatalf("account %d: dns-account-01: %v", i, err)
		}
	}
}

// TestReplaces checks newOrder's replaces both ways (RFC 9773 §5).
func TestReplaces(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	client, user := newLegoClient(t, s, "ec")
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"replace.test"}, Bundle: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := certificate.MakeARICertID(parseLeaf(t, res.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newLegoClient(t, s, "ec")
	_, err = other.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"replace.test"}, ReplacesCertID: id})
	wantProblem(t, err, "unauthorized", http.StatusForbidden)
	_, err = client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"unrelated.test"}, ReplacesCertID: id})
	wantProblem(t, err, "malformed", http.StatusBadRequest)
	if _, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"replace.test"}, ReplacesCertID: id}); err != nil {
		t.Fatalf("replacing order: %v", err)
	}
	// lego drops replaces and retries on alreadyReplaced, so the second
	// replacement is sent by hand.
	raw := &rawClient{t: t, s: s, http: s.HTTPClient(), key: user.key.(crypto.Signer), kid: user.reg.URI}
	status, body, _ := raw.post(strings.Replace(s.DirectoryURL(), "directory", "new-order", 1), map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": "replace.test"}}, "replaces": id})
	if status != http.StatusConflict || body["type"] != "urn:ietf:params:acme:error:alreadyReplaced" {
		t.Fatalf("second replacement: %d %v, want 409 alreadyReplaced", status, body)
	}
}

func asACME(err error, target **acme.Error) bool {
	e, ok := err.(*acme.Error)
	if ok {
		*target = e
	}
	return ok
}
