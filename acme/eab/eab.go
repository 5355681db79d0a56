// Package eab holds external account binding keys (RFC 8555 §7.3.4): the
// Key model and its creation, for the admin command line, the console and
// the ACME server alike.
package eab

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/certmint/certmint/acme/policy"
)

// Key is an external account binding key. HMACKey is the secret shared
// with the client; it is shown once when created and never again. Allow
// optionally narrows what accounts bound with this key may order (DNS
// suffixes and IP CIDRs, as policy.ParseEntries reads them).
type Key struct {
	ID       string
	HMACKey  []byte
	Label    string
	Allow    []string
	Reusable bool
	// Workload is the SPIFFE ID path ("/payments/sender", see package
	// workload) that every account registered with the key is bound to;
	// "" for none. It is fixed when the key is made.
	Workload  string
	Revoked   bool
	UsedBy    string // first (for single-use keys: only) account bound
	UsedAt    *time.Time
	CreatedAt time.Time
}

// NewKey returns a new key with a 256-bit random MAC key, and that MAC key
// base64url-encoded as clients take it (lego --hmac, certbot
// --eab-hmac-key). allow narrows what accounts bound with the key may
// order: DNS suffixes ("payments.internal", "*.payments.internal") and IP
// CIDRs; it is checked here so a typo fails at creation, not at issuance.
// The key's ID is given by the store that saves it, as for every object.
func NewKey(label string, allow []string, reusable bool) (*Key, string, error) {
	rules, err := policy.ParseEntries(allow)
	if err != nil {
		return nil, "", err
	}
	mac := make([]byte, 32)
	if _, err := rand.Read(mac); err != nil {
		return nil, "", err
	}
	k := &Key{HMACKey: mac, Label: label, Reusable: reusable,
		Allow: rules.Entries()}
	return k, base64.RawURLEncoding.EncodeToString(mac), nil
}
