//go:build cgo

package kms

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Available reports whether this build can talk to PKCS#11 modules.
const Available = true

// Token is an open, logged-in session pool on one token. It is safe for
// concurrent use; keys found in it stay usable until Close.
type Token struct {
	uri *URI
	ctx *crypto11.Context
}

// Open loads the module named by u, finds the token and logs in with the
// PIN from u.PIN.
func Open(u *URI) (*Token, error) {
	if _, err := os.Stat(u.ModulePath); err != nil {
		return nil, fmt.Errorf("%w: module-path %s: %v", ErrNoModule, u.ModulePath, errors.Unwrap(err))
	}
	pin, err := u.PIN()
	if err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: u.ModulePath, TokenLabel: u.Token, Pin: pin})
	if err != nil {
		return nil, classify(err, u, "open token "+u.Token)
	}
	return &Token{uri: u, ctx: ctx}, nil
}

// classify turns a crypto11 or PKCS#11 error into one of the package's
// errors, with a message that names the fix and never the PIN.
func classify(err error, u *URI, doing string) error {
	var p11 pkcs11.Error
	if errors.As(err, &p11) {
		switch p11 {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("%w: %s: check pin-source or %s", ErrWrongPIN, u.Token, PINEnv)
		case pkcs11.CKR_PIN_LOCKED:
			return fmt.Errorf("%w: %s: the PIN is locked; unlock it with the token's SO PIN", ErrWrongPIN, u.Token)
		case pkcs11.CKR_TOKEN_WRITE_PROTECTED, pkcs11.CKR_SESSION_READ_ONLY:
			return fmt.Errorf("%w: %s: %s failed; use a writable token, or create the keys elsewhere", ErrReadOnly, u.Token, doing)
		}
		return fmt.Errorf("%s: %v", doing, err)
	}
	// crypto11 does not export these two errors, so their text is the
	// only way to tell them apart.
	switch err.Error() {
	case "failed to create module context: failed to open module":
		return fmt.Errorf("%w: %s is not a PKCS#11 module", ErrNoModule, u.ModulePath)
	case "could not find PKCS#11 token":
		return fmt.Errorf("%w: the module %s has no token labelled %q (list them with `pkcs11-tool --module %s -L`)", ErrNoToken, u.ModulePath, u.Token, u.ModulePath)
	}
	return fmt.Errorf("%s: %v", doing, err)
}

// Find returns the key labelled object.
func (t *Token) Find(object string) (crypto.Signer, error) {
	found, err := t.ctx.FindKeyPairs(nil, []byte(object))
	if err != nil {
		return nil, classify(err, t.uri, "find key "+object)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: token %s has no key pair labelled %q (restore it from the token's backup, or point the CA at the right token)", ErrNoObject, t.uri.Token, object)
	}
	if len(found) > 1 {
		return nil, fmt.Errorf("token %s has %d key pairs labelled %q; certmint cannot tell which one signs", t.uri.Token, len(found), object)
	}
	return found[0], nil
}

// Generate creates a P-256 key pair labelled object in the token. The
// private key is sensitive and not extractable (crypto11's defaults), so
// it never leaves the token. A label already in use is refused rather
// than shadowed.
func (t *Token) Generate(object string) (crypto.Signer, error) {
	if found, err := t.ctx.FindKeyPairs(nil, []byte(object)); err != nil {
		return nil, classify(err, t.uri, "look for key "+object)
	} else if len(found) > 0 {
		return nil, fmt.Errorf("%w: token %s already has %q; pick another object= in the URI, or delete it", ErrObjectExists, t.uri.Token, object)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	s, err := t.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(object), elliptic.P256())
	if err != nil {
		return nil, classify(err, t.uri, "generate key "+object)
	}
	return s, nil
}

// Delete removes the key pair labelled object; ca init uses it to undo a
// key it generated when a later step fails.
func (t *Token) Delete(object string) error {
	found, err := t.ctx.FindKeyPairs(nil, []byte(object))
	if err != nil {
		return err
	}
	for _, s := range found {
		if err := s.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Close logs out and releases the module.
func (t *Token) Close() error { return t.ctx.Close() }
