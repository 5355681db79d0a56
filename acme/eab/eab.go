// Package eab creates external account binding keys (RFC 8555 §7.3.4),
// for the admin command line and the console alike.
package eab

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/storage"
)

// NewKey returns a new key with a 256-bit random MAC key, and that MAC key
// base64url-encoded as clients take it (lego --hmac, certbot
// --eab-hmac-key). allow narrows what accounts bound with the key may
// order: DNS suffixes ("payments.internal", "*.payments.internal") and IP
// CIDRs; it is checked here so a typo fails at creation, not at issuance.
func NewKey(label string, allow []string, reusable bool) (*storage.EABKey, string, error) {
	rules, err := policy.ParseEntries(allow)
	if err != nil {
		return nil, "", err
	}
	mac := make([]byte, 32)
	if _, err := rand.Read(mac); err != nil {
		return nil, "", err
	}
	k := &storage.EABKey{ID: storage.NewID(), HMACKey: mac, Label: label, Reusable: reusable}
	if entries := rules.Entries(); len(entries) > 0 {
		b, _ := json.Marshal(entries)
		k.Allow = string(b)
	}
	return k, base64.RawURLEncoding.EncodeToString(mac), nil
}
