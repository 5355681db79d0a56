// Package certpem reads certificates from PEM text: the one loop that
// the CA's import checks, the trust stores and the agent all need.
package certpem

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrNone is returned when the text holds no CERTIFICATE block.
var ErrNone = errors.New("no PEM certificate found")

// Parse returns every CERTIFICATE block of data, in order; other blocks
// (keys, CRLs) are skipped.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNone
	}
	return out, nil
}
