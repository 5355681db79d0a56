// Package revocation is the one implementation of revoking a certificate,
// which both front ends call: the ACME server (RFC 8555 §7.6) and the
// console. It owns the accepted reasons, the conditional write with its
// audit entry, and the notice that republishes the CRL.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/certmint/certmint/internal/audit"
)

// Reason is an RFC 5280 §5.3.1 reason code with its name and what it
// means to an operator.
type Reason struct {
	Code int
	Name string
	Help string
}

// Reasons are the codes certmint accepts, the same over ACME and in the
// console. certificateHold (6) and removeFromCRL (8) are left out because
// revocation here is final; CA and AA compromise (2, 10) are not a
// subscriber's to claim.
var Reasons = []Reason{
	{0, "unspecified", "No particular reason"},
	{1, "keyCompromise", "The private key was exposed"},
	{3, "affiliationChanged", "The service changed owner or name"},
	{4, "superseded", "A new certificate replaces it"},
	{5, "cessationOfOperation", "The service is gone"},
	{9, "privilegeWithdrawn", "The service may no longer use it"},
}

// Accepted reports whether code is one of Reasons.
func Accepted(code int) bool {
	for _, r := range Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// Name is the RFC 5280 name of code, or the number for a code not in
// Reasons.
func Name(code int) string {
	for _, r := range Reasons {
		if r.Code == code {
			return r.Name
		}
	}
	return strconv.Itoa(code)
}

// AcceptedList spells the accepted codes for an error message.
func AcceptedList() string {
	codes := make([]string, len(Reasons))
	for i, r := range Reasons {
		codes[i] = strconv.Itoa(r.Code)
	}
	return strings.Join(codes, ", ")
}

var (
	// ErrBadReason: the reason code is not one of Reasons.
	ErrBadReason = errors.New("revocation reason not accepted")
	// ErrAlreadyRevoked: the certificate was revoked before, by anyone.
	ErrAlreadyRevoked = errors.New("certificate already revoked")
)

// Store records a revocation. storage implements it.
type Store interface {
	// RevokeCertificate marks certificate id revoked with reason at at and
	// appends e to the audit log, in one transaction. It fails with an
	// error wrapping ErrAlreadyRevoked if the certificate is revoked
	// already.
	RevokeCertificate(ctx context.Context, id string, reason int, at time.Time, e audit.Event) error
}

// Certificate is what a revocation needs to know of the certificate.
type Certificate struct {
	ID     string
	Serial string
	Names  []string
}

// Request says who revokes, from where and why.
type Request struct {
	Reason     int
	Actor      string // audit actor: a console user, audit.ACMEAccount(id), "certificate-key"
	RemoteAddr string
	Via        string // "ACME" or "the console", for the audit detail
}

// Revoker revokes certificates. Its fields are set once at start-up.
type Revoker struct {
	Store Store
	// OnRevoke, when set, is called after every revocation, e.g. to
	// republish the CRL. It must not block.
	OnRevoke func()
	Log      *slog.Logger
	Now      func() time.Time
}

// Revoke revokes c. Whichever of two concurrent revocations comes second,
// from either front end, gets ErrAlreadyRevoked.
func (rv *Revoker) Revoke(ctx context.Context, c Certificate, req Request) error {
	if !Accepted(req.Reason) {
		return fmt.Errorf("%w: %d; use one of %s (RFC 5280 §5.3.1)", ErrBadReason, req.Reason, AcceptedList())
	}
	now := time.Now
	if rv.Now != nil {
		now = rv.Now
	}
	e := audit.Event{Actor: req.Actor, Action: audit.CertRevoke, Target: audit.Certificate(c.ID),
		Detail:     fmt.Sprintf("serial %s (%s), reason %s, via %s", c.Serial, strings.Join(c.Names, ","), Name(req.Reason), req.Via),
		RemoteAddr: req.RemoteAddr}
	err := rv.Store.RevokeCertificate(ctx, c.ID, req.Reason, now().UTC(), e)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", c.ID, err)
	}
	if rv.Log != nil {
		rv.Log.Info("certificate revoked", "certificate", c.ID, "serial", c.Serial, "reason", Name(req.Reason),
			"actor", req.Actor, "via", req.Via)
	}
	if rv.OnRevoke != nil {
		rv.OnRevoke()
	}
	return nil
}
