package storage

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/webhook"
)

// The hooks below run inside the transactions of CompleteFinalize,
// RevokeCertificate and CompleteChallenge: the lineage and the webhook
// outbox change with the certificate or never.

// recordIssued files cert in its lineage and queues certificate.issued.
// The order's `replaces` (RFC 9773 §5) is read here rather than passed
// in, so the ACME core's CompleteFinalize contract stays as it was.
func recordIssued(tx *gorm.DB, orderID string, cert *acme.Certificate) error {
	var replaces []string
	if err := tx.Model(&orderRow{}).Where("id = ?", orderID).Limit(1).Pluck("replaces", &replaces).Error; err != nil {
		return fmt.Errorf("read replaces of order %s: %w", orderID, err)
	}
	rep := ""
	if len(replaces) == 1 {
		rep = replaces[0]
	}
	lineage, err := joinLineage(tx, cert, rep)
	if err != nil {
		return err
	}
	data := map[string]any{
		"certificate_id": cert.ID, "serial": cert.Serial, "names": cert.Names, "account_id": cert.AccountID,
		"order_id": orderID, "profile": cert.Profile, "lineage_id": lineage, "replaces": rep,
		"not_before": cert.NotBefore.UTC().Format(time.RFC3339), "not_after": cert.NotAfter.UTC().Format(time.RFC3339),
	}
	if cert.Identity != "" {
		data["identity"] = cert.Identity
	}
	return enqueueEvent(tx, webhook.CertificateIssued, data, cert.CreatedAt)
}

// recordRevoked marks the lineage and queues certificate.revoked.
func recordRevoked(tx *gorm.DB, certID string, reason int, at time.Time) error {
	if err := revokeLineage(tx, certID); err != nil {
		return fmt.Errorf("revoke lineage of %s: %w", certID, err)
	}
	var c certificateRow
	if err := tx.Select("id, serial, names, account_id").Where("id = ?", certID).Take(&c).Error; err != nil {
		return fmt.Errorf("read revoked certificate %s: %w", certID, err)
	}
	return enqueueEvent(tx, webhook.CertificateRevoked, map[string]any{
		"certificate_id": c.ID, "serial": c.Serial, "names": splitNames(c.Names), "account_id": c.AccountID,
		"reason": reason, "revoked_at": at.UTC().Format(time.RFC3339),
	}, at)
}

// validationFailedEvery is the rate limit of validation.failed: one event
// per account and name in this time. A client retrying a broken
// validation every minute would otherwise flood the receiver.
const validationFailedEvery = time.Hour

// recordValidationFailed queues validation.failed for the authorization's
// account and name, at most once per validationFailedEvery.
func recordValidationFailed(tx *gorm.DB, authzID, challengeID string, failure *acme.Problem, at time.Time) error {
	var a authzRow
	if err := tx.Select("id, account_id, type, value, wildcard").Where("id = ?", authzID).Take(&a).Error; err != nil {
		return fmt.Errorf("read failed authorization %s: %w", authzID, err)
	}
	name := a.Value
	if a.Wildcard {
		name = "*." + name
	}
	key := webhook.ValidationFailed + "/" + a.AccountID + "/" + name
	if len(key) > 255 {
		key = key[:255]
	}
	at = ts(at)
	if ok, err := claimMark(tx, key, validationFailedEvery, at); err != nil || !ok {
		return err
	}
	data := map[string]any{"account_id": a.AccountID, "identifier": map[string]string{"type": a.Type, "value": name},
		"authorization_id": a.ID, "challenge_id": challengeID}
	if failure != nil {
		data["error"] = map[string]string{"type": failure.Type, "detail": failure.Detail}
	}
	return enqueueEvent(tx, webhook.ValidationFailed, data, at)
}
