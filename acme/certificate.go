package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/internal/audit"
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
	if !revocation.Accepted(reason) {
		return BadRevocationReason("reason %d is not accepted; use one of %s (RFC 5280 §5.3.1)", reason, revocation.AcceptedList())
	}
	ctx := c.Request().Context()
	cert, err := s.store.GetCertificateBySerial(ctx, hex.EncodeToString(leaf.SerialNumber.Bytes()))
	if errors.Is(err, ErrNotFound) || (err == nil && !bytes.Equal(cert.DER, der)) {
		return NotFound("certificate")
	}
	if err != nil {
		return storeError("certificate", err)
	}
	if r.account != nil {
		if cert.AccountID != r.account.ID {
			// RFC 8555 §7.6: an account authorized for every name may revoke.
			if err := s.checkAuthorizedFor(ctx, r.account.ID, cert.Names); err != nil {
				return err
			}
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
	actor := "certificate-key"
	if r.account != nil {
		actor = audit.ACMEAccount(r.account.ID)
	}
	err = s.revoker.Revoke(ctx, revocation.Certificate{ID: cert.ID, Serial: cert.Serial, Names: cert.Names},
		revocation.Request{Reason: reason, Actor: actor, RemoteAddr: c.RealIP(), Via: "ACME"})
	if errors.Is(err, revocation.ErrAlreadyRevoked) {
		return AlreadyRevoked("the certificate was revoked already")
	}
	if err != nil {
		return storeError("certificate", err)
	}
	return c.NoContent(http.StatusOK)
}

// chainPEM is the download: leaf then intermediate. Certificates store only
// their DER; the chain is built from the CA when it is served. (Rows from
// before that kept the chain, and are served as kept.)
func (s *Server) chainPEM(cert *Certificate) []byte {
	if cert.ChainPEM != "" {
		return []byte(cert.ChainPEM)
	}
	return s.ca.ChainPEM(cert.DER)
}
