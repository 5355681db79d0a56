package ca

import (
	"crypto"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/certmint/certmint/ca/kms"
)

// keyOpener turns a manifest key reference into a crypto.Signer: a file in
// the CA directory (plain or passphrase-encrypted), or a key in a PKCS#11
// token. This is the seam the CA signs through; a token key is just
// another signer.
type keyOpener struct {
	dir        string
	passphrase []byte
	tokens     []*kms.Token
	byName     map[string]*kms.Token
}

// open returns the signer for ref and whether it is protected at rest
// (an encrypted file or a token key).
func (k *keyOpener) open(ref string) (crypto.Signer, bool, error) {
	if ref == "" {
		return nil, false, fmt.Errorf("no key recorded for the issuer")
	}
	if !strings.HasPrefix(ref, "pkcs11:") {
		return readKeyFile(filepath.Join(k.dir, filepath.Base(ref)), k.passphrase)
	}
	u, err := kms.ParseURI(ref)
	if err != nil {
		return nil, false, err
	}
	t, err := k.token(u)
	if err != nil {
		return nil, false, err
	}
	s, err := t.Find(u.Object)
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// token opens each token once, however many keys it holds.
func (k *keyOpener) token(u *kms.URI) (*kms.Token, error) {
	name := u.ModulePath + "\x00" + u.Token
	if t, ok := k.byName[name]; ok {
		return t, nil
	}
	t, err := kms.Open(u)
	if err != nil {
		return nil, err
	}
	if k.byName == nil {
		k.byName = map[string]*kms.Token{}
	}
	k.byName[name] = t
	k.tokens = append(k.tokens, t)
	return t, nil
}

func (k *keyOpener) close() {
	for _, t := range k.tokens {
		_ = t.Close()
	}
	k.tokens, k.byName = nil, nil
}
