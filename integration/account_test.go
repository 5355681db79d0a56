package integration

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"golang.org/x/crypto/acme"
)

// TestAccounts creates, looks up, updates, rolls over and deactivates
// accounts with two independent client libraries, RSA and ECDSA keys, on
// both database engines (RFC 8555 §7.3).
func TestAccounts(t *testing.T) {
	for engine, dsn := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			s := StartServer(t, ServerOptions{DB: dsn(t)})
			for _, kind := range []string{"rsa", "ec"} {
				t.Run("lego/"+kind, func(t *testing.T) { legoAccountFlow(t, s, kind) })
				t.Run("xcrypto/"+kind, func(t *testing.T) { xcryptoAccountFlow(t, s, kind) })
			}
		})
	}
}

func legoAccountFlow(t *testing.T, s *Server, kind string) {
	key := newAccountKey(t, kind)
	core, err := api.New(s.HTTPClient(), "certmint-test", s.DirectoryURL(), "", key)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := core.Accounts.New(legoacme.Account{Contact: []string{"mailto:ops@example.test"}, TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("new account: %v", err)
	}
	if acct.Location == "" || acct.Status != "valid" || acct.Orders == "" {
		t.Fatalf("new account: %+v", acct)
	}
	// Same key again (a fresh client, signing with jwk): the existing
	// account, same Location (200).
	fresh, err := api.New(s.HTTPClient(), "certmint-test", s.DirectoryURL(), "", key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := fresh.Accounts.New(legoacme.Account{TermsOfServiceAgreed: true})
	if err != nil || again.Location != acct.Location {
		t.Fatalf("existing account: %v %q != %q", err, again.Location, acct.Location)
	}
	core, err = api.New(s.HTTPClient(), "certmint-test", s.DirectoryURL(), acct.Location, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := core.Accounts.Get(acct.Location)
	if err != nil || got.Status != "valid" || len(got.Contact) != 1 {
		t.Fatalf("get: %v %+v", err, got)
	}
	upd, err := core.Accounts.Update(acct.Location, legoacme.Account{Contact: []string{"mailto:new@example.test"}})
	if err != nil || len(upd.Contact) != 1 || upd.Contact[0] != "mailto:new@example.test" {
		t.Fatalf("update: %v %+v", err, upd)
	}
	_, err = core.Accounts.Update(acct.Location, legoacme.Account{Contact: []string{"tel:+1555"}})
	wantProblem(t, err, "unsupportedContact", http.StatusBadRequest)
	if err := core.Accounts.Deactivate(acct.Location); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	_, err = core.Accounts.Get(acct.Location)
	wantProblem(t, err, "unauthorized", http.StatusForbidden)
}

func xcryptoAccountFlow(t *testing.T, s *Server, kind string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &acme.Client{Key: newAccountKey(t, kind), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	// onlyReturnExisting for an unknown key: accountDoesNotExist.
	if _, err := client.GetReg(ctx, ""); !errors.Is(err, acme.ErrNoAccount) {
		t.Fatalf("GetReg before register: %v, want ErrNoAccount", err)
	}
	acct, err := client.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@example.test"}}, acme.AcceptTOS)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if acct.URI == "" || acct.Status != acme.StatusValid || acct.OrdersURL == "" {
		t.Fatalf("register: %+v", acct)
	}
	if _, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS); !errors.Is(err, acme.ErrAccountAlreadyExists) {
		t.Fatalf("second register: %v, want ErrAccountAlreadyExists", err)
	}
	acct.Contact = []string{"mailto:second@example.test"}
	upd, err := client.UpdateReg(ctx, acct)
	if err != nil || upd.Contact[0] != "mailto:second@example.test" {
		t.Fatalf("update: %v %+v", err, upd)
	}
	// Key rollover (§7.3.5): the new key works, the old one no longer.
	oldKey := client.Key
	newKey := newAccountKey(t, kind)
	if err := client.AccountKeyRollover(ctx, newKey); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	client.Key = newKey
	if got, err := client.GetReg(ctx, ""); err != nil || got.URI != acct.URI {
		t.Fatalf("GetReg with new key: %v %+v", err, got)
	}
	old := &acme.Client{Key: oldKey, DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	if _, err := old.GetReg(ctx, ""); !errors.Is(err, acme.ErrNoAccount) {
		t.Fatalf("GetReg with old key: %v, want ErrNoAccount", err)
	}
	// Rolling over to a key that already has an account: 409 with Location.
	other := &acme.Client{Key: newAccountKey(t, kind), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	otherAcct, err := other.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	err = client.AccountKeyRollover(ctx, other.Key.(crypto.Signer))
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || ae.Header.Get("Location") != otherAcct.URI {
		t.Fatalf("rollover to a taken key: %v, want 409 with Location %s", err, otherAcct.URI)
	}
	if err := client.DeactivateReg(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	_, err = client.GetReg(ctx, acct.URI)
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("after deactivation: %v, want unauthorized", err)
	}
}

// wantProblem checks that err is an ACME problem of the given type and
// status, as lego reports it.
func wantProblem(t testing.TB, err error, typ string, status int) {
	t.Helper()
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) {
		t.Fatalf("got %v, want problem %s", err, typ)
	}
	if pd.Type != "urn:ietf:params:acme:error:"+typ || pd.HTTPStatus != status {
		t.Fatalf("got problem %s (%d) %q, want %s (%d)", pd.Type, pd.HTTPStatus, pd.Detail, typ, status)
	}
	if !strings.HasPrefix(pd.Type, "urn:ietf:params:acme:error:") {
		t.Fatalf("bad type %q", pd.Type)
	}
}
