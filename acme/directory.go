package acme

import (
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/internal/truststore"
)

type directoryMeta struct {
	TermsOfService          string            `json:"termsOfService,omitempty"`
	Website                 string            `json:"website,omitempty"`
	ExternalAccountRequired bool              `json:"externalAccountRequired"`
	Profiles                map[string]string `json:"profiles,omitempty"`
	// IssuerDomainNames lets a client learn the names a dns-persist-01
	// record may use before any order (draft-ietf-acme-dns-persist §3.2).
	IssuerDomainNames []string `json:"issuerDomainNames,omitempty"`
	AccountHashPrefix string   `json:"accountHashPrefix,omitempty"`
}

type directoryJSON struct {
	NewNonce    string        `json:"newNonce"`
	NewAccount  string        `json:"newAccount"`
	NewOrder    string        `json:"newOrder"`
	RevokeCert  string        `json:"revokeCert"`
	KeyChange   string        `json:"keyChange"`
	RenewalInfo string        `json:"renewalInfo,omitempty"`
	NewAuthz    string        `json:"newAuthz,omitempty"`
	Meta        directoryMeta `json:"meta"`
}

// directory serves RFC 8555 §7.1.1. The meta object is always present:
// some clients misbehave without it.
func (s *Server) directory(c echo.Context) error {
	base := s.baseURL(c) + "/acme/"
	profiles := make(map[string]string, len(s.cfg.Profiles))
	names := make([]string, 0, len(s.cfg.Profiles))
	for name, p := range s.cfg.Profiles {
		profiles[name] = p.Description
		names = append(names, name)
	}
	sort.Strings(names)
	return writeJSON(c, http.StatusOK, directoryJSON{
		NewNonce:   base + "new-nonce",
		NewAccount: base + "new-account",
		NewOrder:   base + "new-order",
		RevokeCert: base + "revoke-cert",
		KeyChange:  base + "key-change",
		// RFC 9773 §3: the base URL; clients append "/" and the cert ID.
		RenewalInfo: base + "renewal-info",
		// RFC 8555 §7.4.1: pre-authorization.
		NewAuthz: base + "new-authz",
		Meta: directoryMeta{
			ExternalAccountRequired: s.cfg.EABRequired,
			TermsOfService:          s.cfg.TermsOfService,
			Website:                 s.cfg.Website,
			Profiles:                profiles,
			IssuerDomainNames:       s.cfg.DNSPersistIssuers,
			AccountHashPrefix:       s.accountHashPrefix(c),
		},
	})
}

// newNonce serves RFC 8555 §7.2: HEAD answers 200, GET 204. The nonce
// itself is set by commonHeaders, as on every answer to a POST.
func (s *Server) newNonce(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	return c.NoContent(http.StatusNoContent)
}

// rootPEM serves the root of the chain that issues now.
func (s *Server) rootPEM(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/x-pem-file", s.ca.RootPEM())
}

// bundlePEM serves every root clients should trust now, also for
// bootstrap by fingerprint: the client fetches it without trusting TLS
// and checks a SHA-256. During a root rotation's overlap it holds the old
// and the new root, so fleets trust the new one before any certificate
// needs it.
func (s *Server) bundlePEM(c echo.Context) error {
	if h := c.Request().Header.Get(truststore.AccountHeader); h != "" && s.cfg.OnBundleFetch != nil {
		if id := accountIDFromURL(h); id != "" {
			s.cfg.OnBundleFetch(c.Request().Context(), id, c.RealIP())
		}
	}
	return c.Blob(http.StatusOK, "application/x-pem-file", s.ca.BundlePEM())
}

// accountIDFromURL is the account ID of an account URL
// (.../acme/account/ID), or "" when it is not one.
func accountIDFromURL(u string) string {
	i := strings.LastIndex(u, "/acme/account/")
	if i < 0 || len(u) > 512 {
		return ""
	}
	id := u[i+len("/acme/account/"):]
	if id == "" || len(id) > 64 {
		return ""
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return ""
		}
	}
	return id
}
