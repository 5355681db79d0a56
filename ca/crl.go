package ca

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// CRL builds a DER-encoded CRL (RFC 5280 §5) signed by the intermediate,
// listing entries. number is the monotonically increasing CRL number
// (§5.2.3), which the caller persists; the AKI (§5.2.1) is the
// intermediate's SKI. Entry reason codes become the reasonCode extension
// (§5.3.1).
func (c *CA) CRL(entries []x509.RevocationListEntry, number *big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	ch := c.snap()
	return IssuerCRL(&Issuer{Cert: ch.inter, signer: ch.signer}, entries, number, thisUpdate, nextUpdate)
}

// IssuerCRL is CRL signed by iss, one of CRLIssuers: each intermediate
// answers for the certificates it issued, after a rotation too.
func IssuerCRL(iss *Issuer, entries []x509.RevocationListEntry, number *big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if iss == nil || iss.signer == nil || iss.Cert == nil {
		return nil, errors.New("ca: crl: the issuer cannot sign here")
	}
	if number == nil || number.Sign() < 0 {
		return nil, errors.New("ca: crl: number must be non-negative")
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, errors.New("ca: crl: nextUpdate must be after thisUpdate")
	}
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                thisUpdate.UTC(),
		NextUpdate:                nextUpdate.UTC(),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, iss.Cert, iss.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: crl %s: %w", number, err)
	}
	return der, nil
}
