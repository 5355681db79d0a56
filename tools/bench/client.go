package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/certmint/certmint/acme/jws"
)

// directory holds the URLs the bench needs (RFC 8555 §7.1.1).
type directory struct {
	NewNonce   string `json:"newNonce"`
	NewAccount string `json:"newAccount"`
	NewOrder   string `json:"newOrder"`
}

// problem is an RFC 7807 / RFC 8555 §6.7 error document, as an error.
type problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Status int    `json:"status"`
}

func (p *problem) Error() string { return fmt.Sprintf("%s: %s", p.Type, p.Detail) }

const badNonce = "urn:ietf:params:acme:error:badNonce"

// response is what a request returned. body aliases the client's buffer:
// it is valid until the client's next request.
type response struct {
	status     int
	location   string
	retryAfter time.Duration
	body       []byte
}

// client is one worker's ACME session: an account key, its kid, the last
// nonce the server handed out and a reusable body buffer. It is not safe
// for concurrent use; the http.Client underneath is shared.
type client struct {
	hc    *http.Client
	dir   *directory
	key   crypto.Signer
	kid   string
	thumb string
	nonce string // the freshest unused Replay-Nonce (RFC 8555 §7.2)
	buf   bytes.Buffer
	stats *Stats
}

// fetchDirectory reads the directory object.
func fetchDirectory(ctx context.Context, hc *http.Client, url string) (*directory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return nil, fmt.Errorf("directory: %w (trust the server's root with --root FILE, or use --insecure)", err)
		}
		return nil, fmt.Errorf("directory: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("directory %s: HTTP %d", url, resp.StatusCode)
	}
	var d directory
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("directory %s: %w", url, err)
	}
	if d.NewNonce == "" || d.NewAccount == "" || d.NewOrder == "" {
		return nil, fmt.Errorf("directory %s lacks newNonce, newAccount or newOrder: is it an ACME directory?", url)
	}
	return &d, nil
}

// freshNonce asks newNonce for a nonce (RFC 8555 §7.2). Only needed when
// the slot is empty: every response refills it.
func (c *client) freshNonce(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.dir.NewNonce, nil)
	if err != nil {
		return err
	}
	c.stats.Requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.nonce = resp.Header.Get("Replay-Nonce")
	if c.nonce == "" {
		return fmt.Errorf("newNonce: HTTP %d without Replay-Nonce", resp.StatusCode)
	}
	return nil
}

// post sends payload as a JWS to url (nil payload: POST-as-GET, RFC 8555
// §6.3), signed with the account key and kid, or with the JWK before the
// account exists. A badNonce answer is retried once with the nonce it
// carried (§6.5). HTTP errors come back as *problem.
func (c *client) post(ctx context.Context, url string, payload []byte) (*response, error) {
	for attempt := 0; ; attempt++ {
		r, err := c.postOnce(ctx, url, payload)
		var p *problem
		if attempt == 0 && errors.As(err, &p) && p.Type == badNonce {
			c.stats.Retries.Add(1)
			continue
		}
		return r, err
	}
}

func (c *client) postOnce(ctx context.Context, url string, payload []byte) (*response, error) {
	if c.nonce == "" {
		if err := c.freshNonce(ctx); err != nil {
			return nil, fmt.Errorf("newNonce: %w", err)
		}
	}
	body, err := jws.Sign(c.key, jws.ES256, jws.Header{Nonce: c.nonce, URL: url, KID: c.kid}, payload)
	c.nonce = ""
	if err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/jose+json")
	c.stats.Requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	c.nonce = resp.Header.Get("Replay-Nonce")
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	r := &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: c.buf.Bytes()}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			r.retryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			r.retryAfter = time.Until(t)
		}
	}
	if r.status >= 400 {
		p := &problem{}
		if json.Unmarshal(r.body, p) != nil || p.Type == "" {
			p = &problem{Type: "HTTP " + strconv.Itoa(r.status), Detail: http.StatusText(r.status), Status: r.status}
		}
		return r, p
	}
	return r, nil
}

// register creates the account (RFC 8555 §7.3) and keeps its URL as kid.
func (c *client) register(ctx context.Context) error {
	th, err := jws.Thumbprint(c.key.Public())
	if err != nil {
		return err
	}
	c.thumb = th
	r, err := c.post(ctx, c.dir.NewAccount, []byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		return fmt.Errorf("newAccount: %w", err)
	}
	if r.location == "" || (r.status != http.StatusCreated && r.status != http.StatusOK) {
		return fmt.Errorf("newAccount: HTTP %d without an account URL", r.status)
	}
	c.kid = r.location
	return nil
}
