package acme

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ProblemNS is the namespace of ACME error types (RFC 8555 §6.7).
const ProblemNS = "urn:ietf:params:acme:error:"

// requestInstance prefixes the request id in a problem's instance.
const requestInstance = "urn:certmint:request:"

// Problem is an RFC 7807 problem document with the ACME extensions
// (RFC 8555 §6.7). Handlers return it as an error; one echo error handler
// renders it. Err carries the internal cause: it is logged, never sent.
type Problem struct {
	Type        string      `json:"type"`
	Detail      string      `json:"detail,omitempty"`
	Status      int         `json:"status,omitempty"`
	Identifier  *Identifier `json:"identifier,omitempty"`
	Subproblems []*Problem  `json:"subproblems,omitempty"`
	// Algorithms lists the accepted algorithms on badSignatureAlgorithm
	// (RFC 8555 §6.2).
	Algorithms []string `json:"algorithms,omitempty"`
	// Instance names this occurrence (RFC 7807 §3.1): the request id, as
	// in the X-Request-Id header and the server's log line.
	Instance string `json:"instance,omitempty"`

	Err        error         `json:"-"`
	RetryAfter time.Duration `json:"-"`
	Location   string        `json:"-"` // e.g. the existing account on a keyChange conflict
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return fmt.Sprintf("%s: %s: %v", p.Type, p.Detail, p.Err)
	}
	return p.Type + ": " + p.Detail
}

func (p *Problem) Unwrap() error { return p.Err }

func problem(status int, typ, format string, args ...any) *Problem {
	return &Problem{Type: ProblemNS + typ, Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Constructors, one per RFC 8555 §6.7 error type (plus the ARI and
// profiles extensions), with the HTTP status each is sent with.

func Malformed(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "malformed", format, args...)
}
func Unauthorized(format string, args ...any) *Problem {
	return problem(http.StatusForbidden, "unauthorized", format, args...)
}
func BadNonce(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "badNonce", format, args...)
}
func BadPublicKey(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "badPublicKey", format, args...)
}
func BadSignatureAlgorithm(algs []string, format string, args ...any) *Problem {
	p := problem(http.StatusBadRequest, "badSignatureAlgorithm", format, args...)
	p.Algorithms = algs
	return p
}
func AccountDoesNotExist(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "accountDoesNotExist", format, args...)
}
func InvalidContact(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "invalidContact", format, args...)
}
func UnsupportedContact(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "unsupportedContact", format, args...)
}
func UserActionRequired(format string, args ...any) *Problem {
	return problem(http.StatusForbidden, "userActionRequired", format, args...)
}
func ExternalAccountRequired(format string, args ...any) *Problem {
	return problem(http.StatusUnauthorized, "externalAccountRequired", format, args...)
}
func RejectedIdentifier(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "rejectedIdentifier", format, args...)
}
func UnsupportedIdentifier(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "unsupportedIdentifier", format, args...)
}
func BadCSR(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "badCSR", format, args...)
}
func OrderNotReady(format string, args ...any) *Problem {
	return problem(http.StatusForbidden, "orderNotReady", format, args...)
}
func BadRevocationReason(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "badRevocationReason", format, args...)
}
func AlreadyRevoked(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "alreadyRevoked", format, args...)
}
func RateLimited(retry time.Duration, format string, args ...any) *Problem {
	p := problem(http.StatusTooManyRequests, "rateLimited", format, args...)
	p.RetryAfter = retry
	return p
}
func ServerInternal(cause error) *Problem {
	p := problem(http.StatusInternalServerError, "serverInternal", "the server could not complete the request; it was logged")
	p.Err = cause
	return p
}

// Unavailable is serverInternal with Retry-After, for when the database
// cannot be reached: clients should come back, nothing was changed.
func Unavailable(cause error) *Problem {
	p := problem(http.StatusServiceUnavailable, "serverInternal", "the server's database is unavailable; retry later")
	p.Err = cause
	p.RetryAfter = 5 * time.Second
	return p
}

// AlreadyReplaced is RFC 9773 §5's error for a second order replacing the
// same certificate.
func AlreadyReplaced(format string, args ...any) *Problem {
	return problem(http.StatusConflict, "alreadyReplaced", format, args...)
}

// InvalidProfile is the profiles draft's error for an unknown profile.
func InvalidProfile(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "invalidProfile", format, args...)
}

// Validation problem types (RFC 8555 §6.7), set on failed challenges.
func ValidationProblem(kind, detail string) *Problem {
	return problem(http.StatusBadRequest, kind, "%s", detail)
}

// NotFound is sent for unknown resources. RFC 8555 names no type for it;
// like Boulder, certmint answers malformed with 404.
func NotFound(what string) *Problem {
	return problem(http.StatusNotFound, "malformed", "%s not found", what)
}

// storeError turns a storage error into the problem the client sees.
func storeError(what string, err error) *Problem {
	switch {
	case errors.Is(err, ErrNotFound):
		return NotFound(what)
	case errors.Is(err, ErrUnavailable):
		return Unavailable(err)
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return ServerInternal(fmt.Errorf("%s: %w", what, err))
}
