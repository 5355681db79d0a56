package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
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

func newAccount(t *testing.T, s Store) *Account {
	t.Helper()
	a := &Account{ID: NewID(), KeyThumbprint: "tp-" + NewID(), KeyJWK: `{"kty":"EC"}`,
		Status: StatusValid, Contact: `["mailto:a@example.com"]`, TOSAgreed: true, CreatedAt: base}
	noErr(t, "create account", s.CreateAccount(ctx(t), a))
	return a
}

func newAuthz(acct *Account, value string) Authorization {
	a := Authorization{ID: NewID(), AccountID: acct.ID, Type: "dns", Value: value,
		Status: StatusPending, Expires: base.Add(7 * 24 * time.Hour)}
	for i, typ := range []string{"http-01", "dns-01", "tls-alpn-01"} {
		a.Challenges = append(a.Challenges, Challenge{ID: NewID(), Type: typ, Token: "tok-" + NewID(),
			Status: StatusPending, Position: i})
	}
	return a
}

// newOrder creates a pending order with one new authorization per name.
func newOrder(t *testing.T, s Store, acct *Account, names ...string) (*Order, []Authorization) {
	t.Helper()
	o := &Order{ID: NewID(), AccountID: acct.ID, Status: StatusPending, Expires: base.Add(24 * time.Hour),
		Identifiers: `[]`, Names: strings.Join(names, ","), CreatedAt: base}
	var authzs []Authorization
	for _, n := range names {
		a := newAuthz(acct, n)
		authzs = append(authzs, a)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	noErr(t, "create order", s.CreateOrder(ctx(t), o, authzs))
	return o, authzs
}

// validate starts and completes the first challenge of a.
func validate(t *testing.T, s Store, a Authorization, ok bool) {
	t.Helper()
	c := a.Challenges[0].ID
	noErr(t, "start challenge", s.StartChallenge(ctx(t), c))
	problem := ""
	if !ok {
		problem = `{"type":"urn:ietf:params:acme:error:unauthorized"}`
	}
	noErr(t, "complete challenge", s.CompleteChallenge(ctx(t), c, ok, problem, base))
}

func orderStatus(t *testing.T, s Store, id string) string {
	t.Helper()
	o, err := s.GetOrder(ctx(t), id)
	noErr(t, "get order", err)
	return o.Status
}

// readyOrder returns an order whose single authorization is valid.
func readyOrder(t *testing.T, s Store, acct *Account) *Order {
	t.Helper()
	o, authzs := newOrder(t, s, acct, NewID()+".example.com")
	validate(t, s, authzs[0], true)
	if st := orderStatus(t, s, o.ID); st != StatusReady {
		t.Fatalf("order status %s, want ready", st)
	}
	return o
}

func newCert(acct *Account, orderID string, notAfter time.Time) *Certificate {
	id := NewID()
	// The serial comes from the ID's end: IDs made in the same millisecond
	// differ only there (a prefix collided once finalize got fast).
	hexID := fmt.Sprintf("%x", []byte(id))
	return &Certificate{ID: id, Serial: hexID[len(hexID)-32:], AccountID: acct.ID, OrderID: orderID,
		Names: id + ".example.com", CommonName: id + ".example.com", NotBefore: notAfter.Add(-90 * 24 * time.Hour),
		NotAfter: notAfter, DER: []byte{0x30, 0x00}, ChainPEM: "-----BEGIN CERTIFICATE-----", CreatedAt: base}
}

// issue runs an order through finalize and returns its certificate.
func issue(t *testing.T, s Store, acct *Account, notAfter time.Time) *Certificate {
	t.Helper()
	o := readyOrder(t, s, acct)
	noErr(t, "begin finalize", s.BeginFinalize(ctx(t), o.ID))
	c := newCert(acct, o.ID, notAfter)
	noErr(t, "complete finalize", s.CompleteFinalize(ctx(t), o.ID, c))
	return c
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
