package acme

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// ACME Renewal Information, RFC 9773.

type renewalInfoJSON struct {
	SuggestedWindow struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL,omitempty"`
}

// renewalInfo answers GET renewalInfo/{certID} (RFC 9773 §4.2) with the
// window in which the client should renew, and Retry-After for the next
// poll.
func (s *Server) renewalInfo(c echo.Context) error {
	cert, perr := s.certByARIID(c, c.Param("id"))
	if perr != nil {
		return perr
	}
	now := s.now()
	start, end := renewalWindow(cert, now)
	var out renewalInfoJSON
	out.SuggestedWindow.Start, out.SuggestedWindow.End = timestamp(start), timestamp(end)
	retry := cert.NotAfter.Sub(cert.NotBefore) / 20
	retry = min(max(retry, 10*time.Second), 6*time.Hour)
	retryAfter(c, int(retry/time.Second))
	return writeJSON(c, http.StatusOK, out)
}

// renewalWindow runs from 2/3 to 5/6 of the lifetime normally; when the operator asked for renewal now or
// the certificate was revoked, a window in the past, which RFC 9773 §4.2
// tells clients to act on at once.
func renewalWindow(cert *Certificate, now time.Time) (time.Time, time.Time) {
	if cert.RenewNow || cert.Revoked {
		return now.Add(-2 * time.Minute), now.Add(-time.Minute)
	}
	return SuggestedWindow(cert.NotBefore, cert.NotAfter)
}

// SuggestedWindow is the normal renewal window of a certificate valid
// from notBefore to notAfter: 2/3 to 5/6 of its lifetime. The fleet
// inventory keeps it per lineage, so it is the one rule for both.
func SuggestedWindow(notBefore, notAfter time.Time) (time.Time, time.Time) {
	life := notAfter.Sub(notBefore)
	return notBefore.Add(life * 2 / 3), notBefore.Add(life * 5 / 6)
}

// certByARIID resolves an RFC 9773 §4.1 certificate identifier:
// base64url(AKI keyIdentifier) "." base64url(serial).
func (s *Server) certByARIID(c echo.Context, id string) (*Certificate, *Problem) {
	akiPart, serialPart, ok := strings.Cut(id, ".")
	aki, err1 := base64.RawURLEncoding.DecodeString(akiPart)
	serial, err2 := base64.RawURLEncoding.DecodeString(serialPart)
	if !ok || err1 != nil || err2 != nil || len(serial) == 0 {
		return nil, Malformed("%q is not a renewal information certificate identifier (RFC 9773 §4.1)", id)
	}
	if !s.ca.KnowsIssuer(aki) {
		return nil, NotFound("certificate")
	}
	hexSerial := hex.EncodeToString(new(big.Int).SetBytes(serial).Bytes())
	cert, err := s.store.GetCertificateBySerial(c.Request().Context(), hexSerial)
	if err != nil {
		return nil, storeError("certificate", err)
	}
	return cert, nil
}

// checkReplaces validates newOrder's `replaces` (RFC 9773 §5): the
// certificate must be this account's and share a name with the order,
// and no other live order may replace it already.
func (s *Server) checkReplaces(c echo.Context, certID string, accountID string, idents []normalizedIdentifier) (*Certificate, error) {
	cert, perr := s.certByARIID(c, certID)
	if perr != nil {
		if perr.Status == http.StatusNotFound {
			return nil, Malformed("replaces names no certificate of this server")
		}
		return nil, perr
	}
	if cert.AccountID != accountID {
		return nil, Unauthorized("replaces names a certificate of another account")
	}
	shared := false
	for _, id := range idents {
		if contains(cert.Names, id.name()) {
			shared = true
			break
		}
	}
	if !shared {
		return nil, Malformed("the order shares no identifier with the certificate it replaces")
	}
	return cert, nil
}

// markReplaced records the replacement; a certificate replaced by another
// live order gets alreadyReplaced (409).
func (s *Server) markReplaced(c echo.Context, cert *Certificate, orderID string) error {
	err := s.store.MarkReplaced(c.Request().Context(), cert.ID, orderID)
	if errors.Is(err, ErrConflict) {
		return AlreadyReplaced("the certificate is already being replaced by another order")
	}
	if err != nil {
		return storeError("certificate", err)
	}
	return nil
}
