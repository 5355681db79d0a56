package acme

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Wire types: the JSON objects of RFC 8555 §7.1, as sent to clients.

type accountJSON struct {
	Status               string   `json:"status"`
	Contact              []string `json:"contact,omitempty"`
	TermsOfServiceAgreed bool     `json:"termsOfServiceAgreed,omitempty"`
	Orders               string   `json:"orders"`
}

type orderJSON struct {
	Status         string       `json:"status"`
	Expires        string       `json:"expires"`
	Identifiers    []Identifier `json:"identifiers"`
	NotBefore      string       `json:"notBefore,omitempty"`
	NotAfter       string       `json:"notAfter,omitempty"`
	Error          *Problem     `json:"error,omitempty"`
	Authorizations []string     `json:"authorizations"`
	Finalize       string       `json:"finalize"`
	Certificate    string       `json:"certificate,omitempty"`
	Profile        string       `json:"profile,omitempty"`
	Replaces       string       `json:"replaces,omitempty"`
}

type authzJSON struct {
	Identifier Identifier      `json:"identifier"`
	Status     string          `json:"status"`
	Expires    string          `json:"expires,omitempty"`
	Challenges []challengeJSON `json:"challenges"`
	Wildcard   bool            `json:"wildcard,omitempty"`
}

type challengeJSON struct {
	Type      string   `json:"type"`
	URL       string   `json:"url"`
	Status    string   `json:"status"`
	Token     string   `json:"token,omitempty"`
	Validated string   `json:"validated,omitempty"`
	Error     *Problem `json:"error,omitempty"`

	// dns-persist-01 (draft-ietf-acme-dns-persist-01 §3.1).
	IssuerDomainNames []string `json:"issuer-domain-names,omitempty"`
	AccountURI        string   `json:"accounturi,omitempty"`
	// draft -02 §3.1 spells the names issuerDomainNames.
	IssuerDomainNamesV2 []string `json:"issuerDomainNames,omitempty"`
}

// timestamp formats t as RFC 3339 in UTC, as RFC 8555 §7.1 asks.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeJSON sends v with status and the given Location (if any).
func writeJSON(c echo.Context, status int, v any) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(status)
	return writeJSONBody(c.Response(), v)
}

func writeJSONBody(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// retryAfter sets Retry-After in seconds on anything the client must poll.
func retryAfter(c echo.Context, seconds int) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(seconds))
}
