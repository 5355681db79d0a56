package main

import (
	"slices"

	"github.com/certmint/certmint/acme/validate"
)

// checkPersistIssuers normalizes --dns-persist-issuer to the form the
// challenge object must carry (draft-ietf-acme-dns-persist §3.1: lowercase
// A-labels without a trailing dot, at most 10).
func (o *serveOptions) checkPersistIssuers() error {
	if len(o.PersistIssuer) > 10 {
		return usagef("--dns-persist-issuer is given %d times; dns-persist-01 allows at most 10 issuer domain names", len(o.PersistIssuer))
	}
	out := make([]string, 0, len(o.PersistIssuer))
	for _, n := range o.PersistIssuer {
		norm, ok := validate.NormalizeIssuer(n)
		if !ok {
			return usagef("--dns-persist-issuer %q is not a domain name; give the CA's own DNS name in ASCII (punycode), e.g. ca.internal", n)
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	o.PersistIssuer = out
	return nil
}
