package acme

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/workload"
)

// Workload identities. An EAB key may bind a SPIFFE path; the account
// registered with it keeps that path (Account.Workload) for good, and
// every certificate it is issued carries spiffe://TRUST-DOMAIN/PATH as its
// one URI SAN, beside the names its challenges proved. The identity is
// the operator's binding, never the client's claim: a CSR asking for a
// URI is refused (checkCSR), and the binding is checked again at
// finalize, so revoking the key stops new certificates at once.

// workloadID returns the SPIFFE ID acct's certificates carry, the zero ID
// for an account bound to none. It refuses while the binding does not
// hold: the key that made it is revoked or gone (unauthorized), or the
// server cannot name the identity (no trust domain, an ID the issuing
// chain's name constraints refuse): the operator's to fix, so the detail
// says what to do.
func (s *Server) workloadID(ctx context.Context, acct *Account) (spiffeid.ID, error) {
	if acct.Workload == "" {
		return spiffeid.ID{}, nil
	}
	key, err := s.store.GetEABKey(ctx, acct.EABKeyID)
	switch {
	case errors.Is(err, ErrNotFound):
		return spiffeid.ID{}, Unauthorized("the external account binding key that bound this account's workload identity was deleted; no new certificates are issued for it")
	case err != nil:
		return spiffeid.ID{}, storeError("external account key", err)
	case key.Revoked:
		return spiffeid.ID{}, Unauthorized("the external account binding key %q that bound this account's workload identity was revoked; no new certificates are issued for it", key.ID)
	}
	id, err := workload.ID(s.cfg.TrustDomain, acct.Workload)
	if err != nil {
		return spiffeid.ID{}, misconfigured("this account is bound to workload %s: %v", acct.Workload, err)
	}
	if why := s.ca.Permits("uri", id.String()); why != "" {
		return spiffeid.ID{}, misconfigured("%s", why)
	}
	return id, nil
}

// misconfigured is serverInternal with a detail the operator can act on:
// the client did nothing wrong and can do nothing about it.
func misconfigured(format string, args ...any) *Problem {
	return problem(http.StatusInternalServerError, "serverInternal", format, args...)
}

// spiffeRefreshHint is how often consumers of /spiffe/bundle should look
// again (SPIFFE Trust Domain and Bundle §4.1.2). A root rotation publishes
// the new root for its whole overlap (30 days by default) before anything
// chains to it, so an hour is early enough and costs nothing.
const spiffeRefreshHint = time.Hour

// spiffeBundle serves the trust domain's SPIFFE bundle (SPIFFE Trust
// Domain and Bundle §4): a JWK Set with one "x509-svid" key per root of
// /roots/bundle.pem, each with its certificate as x5c and no kid
// (X509-SVID §6.1), spiffe_sequence growing with every change of the
// roots (ca.BundleSequence) and spiffe_refresh_hint. SPIFFE software
// (go-spiffe, SPIRE federation, Envoy) trusts certmint's roots from it and
// follows a root rotation. Without a trust domain there is no bundle.
func (s *Server) spiffeBundle(c echo.Context) error {
	if s.cfg.TrustDomain.IsZero() {
		return problem(http.StatusNotFound, "malformed", "there is no SPIFFE bundle: this server has no trust domain (certmint serve --trust-domain NAME)")
	}
	b := spiffebundle.FromX509Authorities(s.cfg.TrustDomain, s.ca.BundleRoots())
	b.SetSequenceNumber(s.ca.BundleSequence())
	b.SetRefreshHint(spiffeRefreshHint)
	data, err := b.Marshal()
	if err != nil {
		return ServerInternal(err)
	}
	return c.Blob(http.StatusOK, "application/json", data)
}
