package ca

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RenewMargin is added to the longest profile's validity to decide when
// the active intermediate is renewed: a leaf issued on the last day
// before renewal still gets its full lifetime, with room for a slow
// rollout.
const RenewMargin = 14 * 24 * time.Hour

// OfflineWarning is how long before the renewal point an offline root's
// operator is warned that the next intermediate needs signing.
const OfflineWarning = 90 * 24 * time.Hour

// TickOptions configure Tick.
type TickOptions struct {
	RotateOptions
	// LongestValidity is the longest profile's leaf lifetime.
	LongestValidity time.Duration
	// Margin defaults to RenewMargin.
	Margin time.Duration
}

// TickResult says what Tick did or wants the operator to know.
type TickResult struct {
	Switched string // the intermediate that took over issuance
	Retired  int    // retiring issuers past their notAfter, now retired
	Renewed  string // the intermediate created by automatic renewal
	// Warning is set when the active intermediate needs a certificate
	// from the offline root soon: for the log and the console's banner.
	Warning string
}

// RenewAt is when the active intermediate must be replaced so that no
// leaf is cut short by its issuer's notAfter.
func RenewAt(notAfter time.Time, longest, margin time.Duration) time.Time {
	if margin <= 0 {
		margin = RenewMargin
	}
	return notAfter.Add(-longest - margin)
}

// Tick is the issuers' housekeeping, run by one replica at a time: it
// switches issuance to a pending intermediate whose overlap has ended,
// and renews the active intermediate before its remaining life drops
// below the longest profile plus the margin (RenewAt) when the root key
// is at hand; with an offline root it warns from OfflineWarning ahead.
func Tick(ctx context.Context, st IssuerStore, o TickOptions) (TickResult, error) {
	var res TickResult
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	list, err := st.ListIssuers(ctx)
	if err != nil {
		return res, err
	}
	recs := ring(list)
	if p := recs.pending(); p != nil && len(p.CertPEM) > 0 && p.ActivateAt != nil && !now.Before(*p.ActivateAt) {
		if err := Switch(ctx, st, p.ID); err != nil && !errors.Is(err, ErrIssuerConflict) {
			return res, err
		}
		res.Switched = p.ID
		return res, nil
	}
	// An issuer past its notAfter answers for nothing: no leaf outlives
	// it, so its CRL has no certificate left to speak for.
	var expired []IssuerMove
	for i := range recs {
		r := &recs[i]
		if r.State != StateRetiring {
			continue
		}
		if cert, err := parseRecordCert(r); err == nil && now.After(cert.NotAfter) {
			expired = append(expired, IssuerMove{ID: r.ID, From: StateRetiring, To: StateRetired})
		}
	}
	if len(expired) > 0 {
		if err := st.ChangeIssuers(ctx, nil, expired, nil); err != nil && !errors.Is(err, ErrIssuerConflict) {
			return res, err
		}
		res.Retired = len(expired)
	}
	active := recs.activeIntermediate()
	if active == nil {
		return res, nil
	}
	cert, err := parseRecordCert(active)
	if err != nil {
		return res, err
	}
	renewAt := RenewAt(cert.NotAfter, o.LongestValidity, o.Margin)
	root := recs.find(active.ParentID)
	offline := root == nil || root.KeyRef == ""
	switch {
	case recs.pending() != nil && offline && len(recs.pending().CertPEM) == 0 && !now.Before(renewAt.Add(-OfflineWarning)):
		res.Warning = fmt.Sprintf("the intermediate %q expires %s; its successor's CSR waits for the offline root: sign it and run `certmint ca import-intermediate`",
			cert.Subject.CommonName, cert.NotAfter.UTC().Format("2006-01-02"))
	case recs.pending() != nil:
	case offline && !now.Before(renewAt.Add(-OfflineWarning)):
		res.Warning = fmt.Sprintf("the intermediate %q expires %s and the root is offline: run `certmint ca rotate intermediate --csr-out FILE` and have the root sign it before %s",
			cert.Subject.CommonName, cert.NotAfter.UTC().Format("2006-01-02"), renewAt.UTC().Format("2006-01-02"))
	case !offline && !now.Before(renewAt):
		r, err := RotateIntermediate(ctx, st, o.RotateOptions)
		if err != nil {
			return res, fmt.Errorf("renew the intermediate: %w", err)
		}
		res.Renewed = r.Issuer.ID
	}
	return res, nil
}
