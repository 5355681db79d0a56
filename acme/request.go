package acme

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/jws"
)

// request is an authenticated ACME POST: the verified JWS and, for kid
// requests, the account that signed it.
type request struct {
	msg     *jws.Message
	account *Account // nil for jwk-signed requests
	url     string   // the request URL, as checked against the header
}

// postAsGet reports whether the request is POST-as-GET (RFC 8555 §6.3).
func (r *request) postAsGet() bool { return r.msg.PostAsGet() }

// decode unmarshals the payload into v; unknown fields are allowed, as
// RFC 8555 §7.1 asks clients and servers to ignore them.
func (r *request) decode(v any) error {
	if r.postAsGet() {
		return Malformed("the request has an empty payload; a JSON object was expected")
	}
	if err := json.Unmarshal(r.msg.Payload, v); err != nil {
		return Malformed("the payload is not valid JSON for this request: %v", jsonDetail(err))
	}
	return nil
}

type handlerFunc func(c echo.Context, r *request) error

// authOpts says which key identification a resource accepts (RFC 8555
// §6.2): jwk for newAccount, either for revokeCert, kid for the rest.
type authOpts struct {
	jwkOnly  bool
	jwkOrKid bool
}

// authenticated runs the RFC 8555 §6 checks in order: the algorithm
// first (§6.2: an unaccepted one is badSignatureAlgorithm whatever else is
// wrong), content type, body size, JWS syntax, url, key or account,
// signature, and last the nonce, so that a forged request costs no
// database write.
func (s *Server) authenticated(h handlerFunc, opt authOpts) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		body, err := io.ReadAll(io.LimitReader(req.Body, s.cfg.MaxBody+1))
		if err != nil {
			return Malformed("could not read the request body")
		}
		ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if ct != "application/jose+json" {
			if err := jws.CheckAlgorithm(body, jws.ParseOptions{}); err != nil {
				return jwsProblem(err)
			}
			p := Malformed("Content-Type must be application/jose+json (RFC 8555 §6.2)")
			p.Status = http.StatusUnsupportedMediaType
			return p
		}
		if int64(len(body)) > s.cfg.MaxBody {
			p := Malformed("the request body is larger than %d bytes", s.cfg.MaxBody)
			p.Status = http.StatusRequestEntityTooLarge
			return p
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return Malformed("the request body is empty; a flattened JWS was expected")
		}
		msg, err := jws.Parse(body, jws.ParseOptions{})
		if err != nil {
			return jwsProblem(err)
		}
		// A missing nonce is badNonce like a bad one (RFC 8555 §6.5), so
		// clients fetch a fresh nonce and retry instead of giving up.
		if msg.Header.Nonce == "" {
			return BadNonce("the JWS protected header has no nonce (RFC 8555 §6.5)")
		}
		url := s.baseURL(c) + req.URL.Path
		if req.URL.RawQuery != "" {
			url += "?" + req.URL.RawQuery
		}
		if msg.Header.URL != url {
			return Unauthorized("the JWS url %q does not match the request URL %q", msg.Header.URL, url)
		}
		r := &request{msg: msg, url: url}
		var key any
		switch {
		case msg.Header.JWK != nil:
			if !opt.jwkOnly && !opt.jwkOrKid {
				return Malformed("this resource needs a kid (account URL) in the protected header, not a jwk")
			}
			if err := jws.CheckKey(msg.Header.JWK.Key); err != nil {
				return jwsProblem(err)
			}
			key = msg.Header.JWK.Key
		default:
			if opt.jwkOnly {
				return Malformed("newAccount must be signed with a jwk, not a kid (RFC 8555 §7.3)")
			}
			acct, err := s.accountFromKID(c, msg.Header.KID)
			if err != nil {
				return err
			}
			jwk, err := jws.ParseJWK([]byte(acct.KeyJWK))
			if err != nil {
				return ServerInternal(err)
			}
			r.account, key = acct, jwk.Key
		}
		if err := msg.Verify(key); err != nil {
			return jwsProblem(err)
		}
		if err := s.nonces.Redeem(req.Context(), msg.Header.Nonce); err != nil {
			return err
		}
		return h(c, r)
	}
}

// accountFromKID resolves the kid (the account URL, RFC 8555 §6.2) to a
// valid account.
func (s *Server) accountFromKID(c echo.Context, kid string) (*Account, error) {
	prefix := s.baseURL(c) + "/acme/account/"
	id, ok := strings.CutPrefix(kid, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, AccountDoesNotExist("kid %q is not an account URL of this server", kid)
	}
	acct, err := s.store.GetAccount(c.Request().Context(), id)
	if errors.Is(err, ErrNotFound) {
		return nil, AccountDoesNotExist("no account at %q", kid)
	}
	if err != nil {
		return nil, storeError("account", err)
	}
	if acct.Status != StatusValid {
		return nil, Unauthorized("the account is %s", acct.Status)
	}
	return acct, nil
}

// jwsProblem maps a jws error to its RFC 8555 problem; the jws package's
// messages are written to be safe to send.
func jwsProblem(err error) *Problem {
	switch {
	case errors.Is(err, jws.ErrBadAlgorithm):
		return BadSignatureAlgorithm(jws.Algorithms, "%v", err)
	case errors.Is(err, jws.ErrBadKey):
		return BadPublicKey("%v", err)
	default:
		return Malformed("%v", err)
	}
}

// jsonDetail shortens a JSON decoding error for a client.
func jsonDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type (" + te.Value + ")"
	}
	return err.Error()
}

// accountURL, orderURL ... build the resource URLs the directory implies.
func (s *Server) accountURL(c echo.Context, id string) string {
	return s.baseURL(c) + "/acme/account/" + id
}
func (s *Server) orderURL(c echo.Context, id string) string {
	return s.baseURL(c) + "/acme/order/" + id
}
func (s *Server) authzURL(c echo.Context, id string) string {
	return s.baseURL(c) + "/acme/authz/" + id
}
func (s *Server) challengeURL(c echo.Context, id string) string {
	return s.baseURL(c) + "/acme/chall/" + id
}
func (s *Server) certURL(c echo.Context, id string) string {
	return s.baseURL(c) + "/acme/cert/" + id
}
