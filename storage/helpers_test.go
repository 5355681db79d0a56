package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func freeLoopbackPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// base is the tests' "now": fixed, in a non-UTC zone, with nanoseconds,
// to check that the store normalizes time.
var base = time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.FixedZone("X", 3600))

func newAccount(t *testing.T, s Store) *acme.Account {
	t.Helper()
	a := &acme.Account{ID: acme.NewID(), KeyThumbprint: "tp-" + acme.NewID(), KeyJWK: `{"kty":"EC"}`,
		Status: acme.StatusValid, Contact: []string{"mailto:a@example.com"}, TOSAgreed: true, CreatedAt: base}
	noErr(t, "create account", s.CreateAccount(ctx(t), a))
	return a
}

func newAuthz(acct *acme.Account, value string) acme.Authorization {
	a := acme.Authorization{ID: acme.NewID(), AccountID: acct.ID, Type: "dns", Value: value,
		Status: acme.StatusPending, Expires: base.Add(7 * 24 * time.Hour)}
	for i, typ := range []string{"http-01", "dns-01", "tls-alpn-01"} {
		a.Challenges = append(a.Challenges, acme.Challenge{ID: acme.NewID(), Type: typ, Token: "tok-" + acme.NewID(),
			Status: acme.StatusPending, Position: i})
	}
	return a
}

// newOrder creates a pending order with one new authorization per name.
func newOrder(t *testing.T, s Store, acct *acme.Account, names ...string) (*acme.Order, []acme.Authorization) {
	t.Helper()
	o := &acme.Order{ID: acme.NewID(), AccountID: acct.ID, Status: acme.StatusPending, Expires: base.Add(24 * time.Hour),
		Names: names, CreatedAt: base}
	var authzs []acme.Authorization
	for _, n := range names {
		o.Identifiers = append(o.Identifiers, acme.Identifier{Type: "dns", Value: n})
		a := newAuthz(acct, n)
		authzs = append(authzs, a)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	noErr(t, "create order", s.CreateOrder(ctx(t), o, authzs))
	return o, authzs
}

// validate starts and completes the first challenge of a.
func validate(t *testing.T, s Store, a acme.Authorization, ok bool) {
	t.Helper()
	c := a.Challenges[0].ID
	noErr(t, "start challenge", s.StartChallenge(ctx(t), c))
	var problem *acme.Problem
	if !ok {
		problem = &acme.Problem{Type: acme.ProblemNS + "unauthorized", Detail: "no"}
	}
	noErr(t, "complete challenge", s.CompleteChallenge(ctx(t), c, problem, base))
}

func orderStatus(t *testing.T, s Store, id string) string {
	t.Helper()
	o, err := s.GetOrder(ctx(t), id)
	noErr(t, "get order", err)
	return o.Status
}

// readyOrder returns an order whose single authorization is valid.
func readyOrder(t *testing.T, s Store, acct *acme.Account) *acme.Order {
	t.Helper()
	o, authzs := newOrder(t, s, acct, acme.NewID()+".example.com")
	validate(t, s, authzs[0], true)
	if st := orderStatus(t, s, o.ID); st != acme.StatusReady {
		t.Fatalf("order status %s, want ready", st)
	}
	return o
}

func newCert(acct *acme.Account, orderID string, notAfter time.Time) *acme.Certificate {
	id := acme.NewID()
	// The serial comes from the ID's end: IDs made in the same millisecond
	// differ only there (a prefix collided once finalize got fast).
	hexID := fmt.Sprintf("%x", []byte(id))
	return &acme.Certificate{ID: id, Serial: hexID[len(hexID)-32:], AccountID: acct.ID, OrderID: orderID,
		Names: []string{id + ".example.com"}, CommonName: id + ".example.com", NotBefore: notAfter.Add(-90 * 24 * time.Hour),
		NotAfter: notAfter, DER: []byte{0x30, 0x00}, ChainPEM: "-----BEGIN CERTIFICATE-----", CreatedAt: base}
}

// issue runs an order through finalize and returns its certificate.
func issue(t *testing.T, s Store, acct *acme.Account, notAfter time.Time) *acme.Certificate {
	t.Helper()
	o := readyOrder(t, s, acct)
	c := newCert(acct, o.ID, notAfter)
	noErr(t, "complete finalize", s.CompleteFinalize(ctx(t), o.ID, c))
	return c
}

// revokeEvent is the audit entry RevokeCertificate writes with a
// revocation.
func revokeEvent(certID string) audit.Event {
	return audit.Event{Actor: "admin", Action: audit.CertRevoke, Target: audit.Certificate(certID), Detail: "test"}
}

func isConflict(err error) bool { return errors.Is(err, ErrConflict) }

// gormOf returns the gorm store under s, for tests that need the
// database handle.
func gormOf(s Store) *gormStore {
	switch v := s.(type) {
	case *gormStore:
		return v
	case *accountCache:
		return v.gormStore
	}
	return nil
}
