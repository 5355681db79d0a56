package acme

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Observer receives what the ACME server does, for monitoring. The
// metrics package implements it; acme stays free of any metrics library.
// Implementations must be safe for concurrent use and must not block:
// they run on every request.
type Observer interface {
	// ObserveRequest is called once per ACME request, after the response
	// is written. endpoint is the route template ("/acme/order/:id"), never
	// the raw path, so that it has few values; problem is the short RFC
	// 8555 §6.7 type ("badNonce") of an error response, "" otherwise.
	ObserveRequest(endpoint string, code int, problem string, took time.Duration)
	// ObserveValidation is called once per challenge validation attempt
	// (RFC 8555 §8) with the challenge type and "valid" or "invalid".
	ObserveValidation(challengeType, result string, took time.Duration)
}

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, int, string, time.Duration) {}
func (nopObserver) ObserveValidation(string, string, time.Duration)   {}

// RequestIDHeader carries the request id in every ACME response, so that a
// client's report names the server's log line.
const RequestIDHeader = "X-Request-Id"

// Keys of values the middleware below shares with the error handler.
const (
	ctxRequestID = "certmint.request-id"
	ctxProblem   = "certmint.problem"
)

// newRequestID is 64 random bits in hex: unique enough to find one line
// among a replica set's logs, short enough to read out over the phone.
// Client-sent ids are not trusted, since anyone can send them.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID is the id the observe middleware gave c ("" outside it).
func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// observe wraps every ACME request: it gives it an id (response header,
// problem documents, log), writes one log line when it is done, and
// reports it to the Observer. Errors are rendered here rather than after
// the chain, so the line and the metric see the status actually sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := newRequestID()
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(RequestIDHeader, id)
		if err := next(c); err != nil {
			c.Error(err)
		}
		took := time.Since(start)
		endpoint := c.Path()
		if endpoint == "/*" || endpoint == "" {
			endpoint = "other" // RouteNotFound: raw paths would make unbounded labels
		}
		code := c.Response().Status
		problem, _ := c.Get(ctxProblem).(string)
		problem = strings.TrimPrefix(problem, ProblemNS)
		s.observer.ObserveRequest(endpoint, code, problem, took)
		level := slog.LevelInfo
		if code >= 500 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("request_id", id), slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path), slog.Int("status", code),
			slog.Duration("took", took), slog.String("client", c.RealIP())}
		if problem != "" {
			attrs = append(attrs, slog.String("problem", problem))
		}
		s.log.LogAttrs(c.Request().Context(), level, "acme request", attrs...)
		return nil
	}
}
