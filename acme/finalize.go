package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/internal/audit"
)

type finalizeRequest struct {
	CSR string `json:"csr"`
}

// finalize implements RFC 8555 §7.4: it checks the CSR, signs at once and
// answers with the order valid, or with orderNotReady before the order is
// ready. The CSR is checked before the order is touched, so a bad CSR
// leaves the order ready for a corrected one.
func (s *Server) finalize(c echo.Context, r *request) error {
	var req finalizeRequest
	if err := r.decode(&req); err != nil {
		return err
	}
	o, err := s.ownOrder(c, r)
	if err != nil {
		return err
	}
	if o.Status != StatusReady || s.now().After(o.Expires) {
		if o.Status == StatusValid {
			return OrderNotReady("the order is %s; it was finalized already", o.Status)
		}
		return OrderNotReady("the order is %s, not ready; complete its authorizations first", o.Status)
	}
	der, err := base64.RawURLEncoding.DecodeString(req.CSR)
	if err != nil {
		return BadCSR("csr is not base64url without padding")
	}
	csr, perr := s.checkCSR(der, o, r.account)
	if perr != nil {
		return perr
	}
	// The binding is checked again here, not only at newOrder: a key
	// revoked meanwhile issues nothing more.
	id, err := s.workloadID(c.Request().Context(), r.account)
	if err != nil {
		return err
	}
	// Signing is synchronous and the certificate is stored in the same
	// transaction that moves the order from ready to valid, so there is
	// no processing state to recover after a crash, and of two racing
	// finalize requests exactly one commits.
	cert, err := s.issue(c, o, csr, id)
	if err != nil {
		return err
	}
	o.Status, o.CertificateID = StatusValid, cert.ID
	s.log.Info("certificate issued", "request_id", requestID(c), "order", o.ID, "account", o.AccountID, "serial", cert.Serial, "names", cert.Names, "identity", cert.Identity)
	return writeJSON(c, http.StatusOK, s.orderJSON(c, o))
}

// issue signs the certificate and stores it in the same transaction that
// makes the order valid, so a certificate is never returned before it is
// committed. A serial collision (2^-127 per pair) picks a new serial. A
// non-zero id becomes the certificate's one URI SAN.
func (s *Server) issue(c echo.Context, o *Order, csr *x509.CertificateRequest, id spiffeid.ID) (*Certificate, error) {
	prof := s.cfg.Profiles[o.Profile]
	tmpl := ca.Template{
		PublicKey:   csr.PublicKey,
		CommonName:  csr.Subject.CommonName,
		DNSNames:    csr.DNSNames,
		IPAddresses: csr.IPAddresses,
		Profile:     prof,
		CRLURL:      s.cfg.CRLURL,
	}
	if !id.IsZero() {
		tmpl.URI = id.URL()
	}
	if o.NotBefore != nil {
		tmpl.NotBefore = *o.NotBefore
	}
	if o.NotAfter != nil {
		tmpl.NotAfter = *o.NotAfter
	}
	keyHash := spkiHash(csr.RawSubjectPublicKeyInfo)
	for attempt := 0; attempt < 3; attempt++ {
		serial, err := ca.NewSerial()
		if err != nil {
			return nil, ServerInternal(err)
		}
		tmpl.Serial = serial
		der, err := s.ca.Issue(tmpl)
		if err != nil {
			return nil, ServerInternal(fmt.Errorf("sign order %s: %w", o.ID, err))
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, ServerInternal(err)
		}
		cert := &Certificate{
			ID:         NewID(),
			Serial:     hex.EncodeToString(serial.Bytes()),
			AccountID:  o.AccountID,
			OrderID:    o.ID,
			Names:      o.Names,
			CommonName: strings.ToLower(csr.Subject.CommonName),
			Profile:    o.Profile,
			KeyHash:    keyHash,
			NotBefore:  leaf.NotBefore.UTC(),
			NotAfter:   leaf.NotAfter.UTC(),
			DER:        der,
			ARIID:      ariCertID(leaf),
			CreatedAt:  s.now().UTC(),
			IssuerID:   hex.EncodeToString(leaf.AuthorityKeyId),
		}
		detail := "serial " + cert.Serial + " for " + strings.Join(cert.Names, ",")
		if !id.IsZero() {
			cert.Identity = id.String()
			detail += " as " + cert.Identity
		}
		ctx := c.Request().Context()
		err = s.store.CompleteFinalize(ctx, o.ID, cert, audit.Event{
			Actor: audit.ACMEAccount(o.AccountID), Action: audit.CertIssue, Target: audit.Certificate(cert.ID),
			Detail: detail, RemoteAddr: c.RealIP(),
		})
		if errors.Is(err, ErrConflict) {
			// Either another finalize of this order won, or (2^-127) the
			// serial exists: only the second is worth another try.
			if cur, gerr := s.store.GetOrder(ctx, o.ID); gerr == nil && cur.Status != StatusReady {
				return nil, OrderNotReady("the order was finalized by another request")
			}
			continue
		}
		if err != nil {
			return nil, storeError("certificate", err)
		}
		return cert, nil
	}
	return nil, ServerInternal(fmt.Errorf("order %s: no unique serial after 3 attempts", o.ID))
}

// checkCSR applies RFC 8555 §7.4's checks: a valid signature, exactly the
// order's identifiers (a CN, if any, among them), an acceptable key that is
// not the account key.
func (s *Server) checkCSR(der []byte, o *Order, acct *Account) (*x509.CertificateRequest, *Problem) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, BadCSR("the CSR cannot be parsed: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, BadCSR("the CSR signature is invalid")
	}
	if p := checkCSRKey(csr.PublicKey); p != nil {
		return nil, p
	}
	if thumb, err := jws.Thumbprint(csr.PublicKey); err == nil && thumb == acct.KeyThumbprint {
		return nil, BadCSR("the CSR key is the account key; use a separate key for the certificate")
	}
	want := o.Names
	var got []string
	for _, n := range csr.DNSNames {
		// An IP address belongs in an IP SAN (RFC 8738 §3), never a DNS one.
		if _, err := netip.ParseAddr(n); err == nil {
			return nil, BadCSR("the CSR names IP address %q as a DNS name; use an IP address SAN", n)
		}
		got = append(got, strings.ToLower(n))
	}
	for _, ip := range csr.IPAddresses {
		got = append(got, canonicalIP(ip))
	}
	if len(csr.URIs) > 0 {
		// A workload identity is the operator's binding, not the client's
		// claim (identity.go); the CSR asks for names only (§7.4).
		return nil, BadCSR("the CSR asks for URI %q; a certificate's workload identity comes from the account's external account binding, never from the CSR: remove the URI SAN", csr.URIs[0].String())
	}
	if len(csr.EmailAddresses) > 0 {
		return nil, BadCSR("the CSR may only name DNS names and IP addresses")
	}
	if cn := strings.ToLower(csr.Subject.CommonName); cn != "" {
		if !contains(want, cn) {
			return nil, BadCSR("the CSR common name %q is not one of the order's identifiers", csr.Subject.CommonName)
		}
		if !contains(got, cn) {
			// RFC 8555 §7.4 lets a name appear in the CN only; the
			// certificate still needs it as a SAN (RFC 5280 §4.2.1.6).
			got = append(got, cn)
			if ip, err := netip.ParseAddr(cn); err == nil {
				csr.IPAddresses = append(csr.IPAddresses, net.IP(ip.AsSlice()))
			} else {
				csr.DNSNames = append(csr.DNSNames, cn)
			}
		}
	}
	if missing, extra := diff(want, got); len(missing) > 0 || len(extra) > 0 {
		return nil, BadCSR("the CSR names must be exactly the order's identifiers: missing %v, extra %v", missing, extra)
	}
	return csr, nil
}

// checkCSRKey accepts RSA 2048-8192 bits and ECDSA P-256/P-384.
func checkCSRKey(pub crypto.PublicKey) *Problem {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return BadCSR("an RSA key must have 2048 to 8192 bits, this one has %d", n)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return BadCSR("an ECDSA key must be on P-256 or P-384")
		}
	default:
		return BadCSR("the CSR key must be RSA or ECDSA, not %T", pub)
	}
	return nil
}

func canonicalIP(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.String()
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// diff returns the names in want missing from got, and those in got not in
// want; duplicates in got count as extra.
func diff(want, got []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, n := range want {
		w[n] = true
	}
	seen := map[string]bool{}
	for _, n := range got {
		if !w[n] || seen[n] {
			extra = append(extra, n)
		}
		seen[n] = true
	}
	for _, n := range want {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

func spkiHash(spki []byte) string {
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

// ariCertID is the RFC 9773 §4.1 certificate identifier:
// base64url(AKI keyIdentifier) "." base64url(serial DER bytes).
func ariCertID(leaf *x509.Certificate) string {
	serial := leaf.SerialNumber.Bytes()
	if len(serial) > 0 && serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	return base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(serial)
}
