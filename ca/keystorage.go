package ca

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// KeyStorage says how an issuer record keeps its key, as a backup sees
// it: a backup carries database keys exactly as stored, and a token key
// only as its URI.
type KeyStorage string

// Key storages of an issuer record.
const (
	KeyEncrypted KeyStorage = "database-encrypted" // PEM sealed under CERTMINT_CA_PASSPHRASE
	KeyPlain     KeyStorage = "database-plain"     // PKCS#8 PEM in the clear
	KeyToken     KeyStorage = "pkcs11"             // in a PKCS#11 token; the record holds its URI
	KeyOffline   KeyStorage = "offline"            // no key at all (an offline root)
	KeyFile      KeyStorage = "file"               // a file in DATA/ca (a CA not yet recorded)
)

// KeyStorage reports where r's key is.
func (r IssuerRecord) KeyStorage() KeyStorage {
	switch {
	case r.KeyRef == "":
		return KeyOffline
	case strings.HasPrefix(r.KeyRef, "pkcs11:"):
		return KeyToken
	case r.KeyRef != KeyRefDB:
		return KeyFile
	}
	if block, _ := pem.Decode(r.KeyPEM); block != nil && block.Type == pemTypeEncryptedKey {
		return KeyEncrypted
	}
	return KeyPlain
}

// CheckKeys opens every key recorded in recs' database rows with
// passphrase and checks it against its certificate, so a restore can
// refuse a wrong passphrase before it writes anything. Token keys are not
// opened (the token may be elsewhere); offline keys have nothing to open.
// A wrong or missing passphrase is ErrBadPassphrase.
func CheckKeys(recs []IssuerRecord, passphrase []byte) error {
	for _, r := range recs {
		if r.KeyRef != KeyRefDB {
			continue
		}
		key, _, err := decodeKey(r.KeyPEM, passphrase)
		if err != nil {
			return fmt.Errorf("the %s key of issuer %s: %w", r.Role, r.ID, err)
		}
		block, _ := pem.Decode(r.CertPEM)
		if block == nil {
			continue // a pending intermediate: no certificate yet
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("the %s certificate of issuer %s: %w", r.Role, r.ID, err)
		}
		if err := matchKey(cert, key); err != nil {
			return fmt.Errorf("issuer %s: %w", r.ID, err)
		}
	}
	return nil
}

// SealKeys returns a copy of recs in which every key the database keeps
// in the clear (KeyPlain) is sealed under passphrase exactly as a server
// with CERTMINT_CA_PASSPHRASE stores it, so a backup of a server that ran
// without one need not carry its keys in the clear. Other records are
// copied as they are; an encrypted key is not opened here (CheckKeys
// does that). passphrase must not be empty.
func SealKeys(recs []IssuerRecord, passphrase []byte) ([]IssuerRecord, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: sealing keys needs a passphrase", ErrBadPassphrase)
	}
	out := slices.Clone(recs)
	for i, r := range out {
		if r.KeyStorage() != KeyPlain {
			continue
		}
		key, _, err := decodeKey(r.KeyPEM, nil)
		if err != nil {
			return nil, fmt.Errorf("the %s key of issuer %s: %w", r.Role, r.ID, err)
		}
		sealed, err := encodeKey(key, passphrase)
		if err != nil {
			return nil, fmt.Errorf("seal the %s key of issuer %s: %w", r.Role, r.ID, err)
		}
		out[i].KeyPEM = sealed
	}
	return out, nil
}
