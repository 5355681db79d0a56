package integration

import (
	"bytes"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/certmint/certmint/acme/jws"
)

// rawClient sends hand-made ACME requests, for the checks real clients
// would not let a test make (they retry or rewrite what the server
// refuses).
type rawClient struct {
	t    testing.TB
	s    *Server
	http *http.Client
	key  crypto.Signer
	kid  string // account URL; "" signs with the jwk
}

// nonce fetches a fresh nonce from newNonce.
func (c *rawClient) nonce() string {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "https://127.0.0.1:"+itoa(c.s.Port)+"/acme/new-nonce", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// post signs payload (nil: POST-as-GET) for url and returns the status,
// the decoded problem or body, and the response.
func (c *rawClient) post(url string, payload any) (int, map[string]any, *http.Response) {
	c.t.Helper()
	var body []byte
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			c.t.Fatal(err)
		}
	}
	msg, err := jws.Sign(c.key, jws.AlgFor(c.key.Public()), jws.Header{Nonce: c.nonce(), URL: url, KID: c.kid}, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.send(url, "application/jose+json", msg)
}

// send posts a raw body.
func (c *rawClient) send(url, contentType string, body []byte) (int, map[string]any, *http.Response) {
	c.t.Helper()
	resp, err := c.http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, resp
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
