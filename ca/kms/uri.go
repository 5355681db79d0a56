// Package kms reaches CA keys held in a PKCS#11 token (an HSM, a YubiHSM,
// SoftHSM2) as crypto.Signer values, so the CA signs through the token
// exactly as it signs with a key file. The token is named by an RFC 7512
// URI. Talking to a PKCS#11 module needs cgo; a build without cgo keeps
// the URI parsing and answers every token operation with ErrNoPKCS11.
package kms

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
)

// PINEnv is the environment variable that holds the token's user PIN when
// the URI has no pin-source.
const PINEnv = "CERTMINT_PKCS11_PIN"

// DefaultObject is the label of the intermediate's key when the URI names
// no object.
const DefaultObject = "certmint-intermediate"

// Errors a caller can tell apart; each names a fix in its message.
var (
	ErrNoPKCS11     = errors.New("this build of certmint has no PKCS#11 support (it was built with CGO_ENABLED=0); use a build with cgo, e.g. `make build`")
	ErrBadURI       = errors.New("bad PKCS#11 URI")
	ErrNoPIN        = errors.New("no PIN for the token")
	ErrWrongPIN     = errors.New("the token refused the PIN")
	ErrNoModule     = errors.New("the PKCS#11 module cannot be loaded")
	ErrNoToken      = errors.New("no such token")
	ErrNoObject     = errors.New("no such key in the token")
	ErrObjectExists = errors.New("the token already holds a key with this label")
	ErrReadOnly     = errors.New("the token is not writable")
)

// URI is a parsed RFC 7512 PKCS#11 URI. Only the attributes certmint uses
// are kept; pin-value is refused (a PIN in a URI ends up in `ps`, shell
// history and config files).
type URI struct {
	Token      string // path attribute "token": the token label
	Object     string // path attribute "object": the key's label
	ModulePath string // query attribute "module-path"
	PINSource  string // query attribute "pin-source": file:/path or /path
}

// ParseURI parses s, e.g.
// pkcs11:token=certmint;object=certmint-intermediate?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/certmint/pin
func ParseURI(s string) (*URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("%w: it must start with pkcs11: (RFC 7512)", ErrBadURI)
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	// RFC 7512 §2.3: path attributes are separated by ";", query
	// attributes by "&"; values are percent-encoded.
	for _, attr := range splitNonEmpty(path, ";") {
		k, v, err := attribute(attr)
		if err != nil {
			return nil, err
		}
		switch k {
		case "token":
			u.Token = v
		case "object":
			u.Object = v
		case "id", "type", "manufacturer", "model", "serial", "library-manufacturer", "library-description", "library-version", "slot-description", "slot-manufacturer", "slot-id":
			return nil, fmt.Errorf("%w: attribute %q is not supported; name the token with token= and the key with object=", ErrBadURI, k)
		default:
			return nil, fmt.Errorf("%w: unknown path attribute %q", ErrBadURI, k)
		}
	}
	for _, attr := range splitNonEmpty(query, "&") {
		k, v, err := attribute(attr)
		if err != nil {
			return nil, err
		}
		switch k {
		case "module-path":
			u.ModulePath = v
		case "pin-source":
			u.PINSource = v
		case "pin-value":
			return nil, fmt.Errorf("%w: pin-value would put the PIN where `ps` and logs show it; use pin-source=file:/path or set %s", ErrBadURI, PINEnv)
		default:
			return nil, fmt.Errorf("%w: unknown query attribute %q", ErrBadURI, k)
		}
	}
	if u.Token == "" {
		return nil, fmt.Errorf("%w: it names no token (add token=LABEL)", ErrBadURI)
	}
	if u.ModulePath == "" {
		return nil, fmt.Errorf("%w: it names no module (add ?module-path=/path/to/module.so)", ErrBadURI)
	}
	if u.Object == "" {
		u.Object = DefaultObject
	}
	return u, nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func attribute(attr string) (string, string, error) {
	k, v, ok := strings.Cut(attr, "=")
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not name=value", ErrBadURI, attr)
	}
	dv, err := url.PathUnescape(v)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s: %v", ErrBadURI, k, err)
	}
	return strings.ToLower(k), dv, nil
}

// WithObject returns a copy of u naming another key in the same token.
func (u *URI) WithObject(object string) *URI {
	c := *u
	c.Object = object
	return &c
}

// String is the canonical URI; it never holds a PIN.
func (u *URI) String() string {
	var b strings.Builder
	b.WriteString("pkcs11:token=" + escape(u.Token) + ";object=" + escape(u.Object))
	q := map[string]string{"module-path": u.ModulePath, "pin-source": u.PINSource}
	keys := make([]string, 0, len(q))
	for k, v := range q {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString(k + "=" + escape(q[k]))
	}
	return b.String()
}

// escape percent-encodes what would end or confuse an attribute value
// (RFC 7512 §2.3) and leaves paths readable.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("%;?&#=", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Location is how operators see where a key is: "PKCS#11 token X, object Y".
func (u *URI) Location() string {
	return fmt.Sprintf("PKCS#11 token %s, object %s", u.Token, u.Object)
}

// PIN reads the user PIN from pin-source, or else from CERTMINT_PKCS11_PIN.
// It is never logged and never part of an error message.
func (u *URI) PIN() (string, error) {
	if u.PINSource != "" {
		path := strings.TrimPrefix(u.PINSource, "file:")
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: cannot read pin-source %s: %v", ErrNoPIN, path, errors.Unwrap(err))
		}
		pin := strings.TrimRight(string(data), "\r\n")
		if pin == "" {
			return "", fmt.Errorf("%w: pin-source %s is empty", ErrNoPIN, path)
		}
		return pin, nil
	}
	if pin := os.Getenv(PINEnv); pin != "" {
		return pin, nil
	}
	return "", fmt.Errorf("%w: add pin-source=file:/path to the URI or set %s", ErrNoPIN, PINEnv)
}
