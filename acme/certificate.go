package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/storage"
)

// certificate serves the download (RFC 8555 §7.4.2): leaf then
// intermediate, PEM, one response.
func (s *Server) certificate(c echo.Context, r *request) error {
	cert, err := s.store.GetCertificate(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError("certificate", err)
	}
	if cert.AccountID != r.account.ID {
		return Unauthorized("the certificate belongs to another account")
	}
	return c.Blob(http.StatusOK, "application/pem-certificate-chain", s.chainPEM(cert))
}

type revokeRequest struct {
	Certificate string `json:"certificate"`
	Reason      *int   `json:"reason"`
}

// revocationReasons are the RFC 5280 §5.3.1 reason codes a subscriber may
// give: unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation and privilegeWithdrawn. cACompromise and
// aACompromise are the CA's to declare; certificateHold cannot be undone
// here; removeFromCRL only applies to delta CRLs.
var revocationReasons = map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true, 9: true}

// revokeCert implements RFC 8555 §7.6: signed by the account that holds
// the certificate (kid) or by the certificate's own key (jwk).
func (s *Server) revokeCert(c echo.Context, r *request) error {
	var req revokeRequest
	if err := r.decode(&req); err != nil {
		return err
	}
	der, err := base64.RawURLEncoding.DecodeString(req.Certificate)
	if err != nil {
		return Malformed("certificate is not base64url without padding")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Malformed("certificate is not a DER certificate")
	}
	reason := 0
	if req.Reason != nil {
		reason = *req.Reason
	}
	if !revocationReasons[reason] {
		return BadRevocationReason("reason %d is not accepted; use 0, 1, 3, 4, 5 or 9 (RFC 5280 §5.3.1)", reason)
	}
	ctx := c.Request().Context()
	cert, err := s.store.GetCertificateBySerial(ctx, hex.EncodeToString(leaf.SerialNumber.Bytes()))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !bytes.Equal(cert.DER, der)) {
		return NotFound("certificate")
	}
	if err != nil {
		return storeError("certificate", err)
	}
	if r.account != nil {
		if cert.AccountID != r.account.ID {
			return Unauthorized("the certificate belongs to another account")
		}
	} else {
		pub, err := x509.MarshalPKIXPublicKey(r.msg.Header.JWK.Key)
		if err != nil || !bytes.Equal(pub, leaf.RawSubjectPublicKeyInfo) {
			return Unauthorized("the request is signed neither by the certificate's account nor by its key")
		}
	}
	if cert.Revoked {
		return AlreadyRevoked("the certificate was revoked already")
	}
	if err := s.store.RevokeCertificate(ctx, cert.ID, reason, s.now().UTC()); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return AlreadyRevoked("the certificate was revoked already")
		}
		return storeError("certificate", err)
	}
	s.log.Info("certificate revoked", "request_id", requestID(c), "serial", cert.Serial, "reason", reason, "account", cert.AccountID)
	actor := "certificate-key"
	if r.account != nil {
		actor = "account:" + r.account.ID
	}
	s.audit(c, actor, "certificate.revoke", cert.ID, fmt.Sprintf("serial %s, reason %d, over ACME", cert.Serial, reason))
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke()
	}
	return c.NoContent(http.StatusOK)
}

// chainPEM is the download: leaf then intermediate. Certificates store only
// their DER; the chain is built from the CA when it is served. (Rows from
// before that kept the chain, and are served as kept.)
func (s *Server) chainPEM(cert *storage.Certificate) []byte {
	if cert.ChainPEM != "" {
		return []byte(cert.ChainPEM)
	}
	return s.ca.ChainPEM(cert.DER)
}
