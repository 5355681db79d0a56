// Package eab holds external account binding keys (RFC 8555 §7.3.4): the
// Key model and its creation, for the admin command line, the console and
// the ACME server alike. A key may bind a workload identity: every
// account registered with it is that workload (package workload).
package eab

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/workload"
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

// Spec is what a new key is for: a label, the names its accounts may
// order (DNS suffixes and IP CIDRs, as policy.ParseEntries reads them;
// none: whatever the server allows), whether several accounts may bind
// with it, and the workload path its accounts' certificates name
// ("payments/sender", see package workload; "" for none).
type Spec struct {
	Label    string
	Allow    []string
	Reusable bool
	Workload string
}

// FieldError is a refused Spec field: Field is "allow" or "workload", so
// the command line can name its flag and the console its form field.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// NewKey returns a new key with a 256-bit random MAC key, and that MAC key
// base64url-encoded as clients take it (lego --hmac, certbot
// --eab-hmac-key). The allow list and the workload path are checked here,
// so a typo fails at creation, not at issuance (a *FieldError).
// The key's ID is given by the store that saves it, as for every object.
func NewKey(spec Spec) (*Key, string, error) {
	rules, err := policy.ParseEntries(spec.Allow)
	if err != nil {
		return nil, "", &FieldError{Field: "allow", Err: err}
	}
	path := ""
	if strings.TrimSpace(spec.Workload) != "" {
		if path, err = workload.ParsePath(spec.Workload); err != nil {
			return nil, "", &FieldError{Field: "workload", Err: err}
		}
	}
	mac := make([]byte, 32)
	if _, err := rand.Read(mac); err != nil {
		return nil, "", err
	}
	k := &Key{HMACKey: mac, Label: spec.Label, Reusable: spec.Reusable,
		Allow: rules.Entries(), Workload: path}
	return k, base64.RawURLEncoding.EncodeToString(mac), nil
}
