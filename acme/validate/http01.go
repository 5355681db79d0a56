package validate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// userAgent identifies validation requests in the applicant's access logs.
const userAgent = "certmint-validator (+ACME RFC 8555)"

// redirectError is a redirect the validator refused to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// http01 fetches http://<value>:<HTTPPort>/.well-known/acme-challenge/<token>
// and compares the body with the key authorization (RFC 8555 §8.3; for IP
// identifiers RFC 8738 §3, where the Host header is the address itself).
func (v *Validator) http01(ctx context.Context, r Request) *Error {
	port := strconv.Itoa(v.cfg.HTTPPort)
	target := "http://" + net.JoinHostPort(r.Value, port) + "/.well-known/acme-challenge/" + r.Token

	// dialled records the last address actually connected, for the detail.
	var (
		mu      sync.Mutex
		dialled string
	)
	tr := &http.Transport{
		Proxy: nil, // validation must reach the applicant, never an operator proxy
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("split %q: %w", addr, err)
			}
			conn, err := v.dialTarget(ctx, host, p)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			dialled = conn.RemoteAddr().String()
			mu.Unlock()
			return conn, nil
		},
		// RFC 8555 §8.3: a redirect to https is followed, but the server
		// MUST NOT check the certificate it is shown there.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // required by RFC 8555 §8.3
		TLSHandshakeTimeout:    v.cfg.DialTimeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: v.checkRedirect}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return failf(KindConnection, "invalid validation URL %s", target)
	}
	req.Host = hostHeader(r.Value)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")

	resp, err := client.Do(req)
	if err != nil {
		return httpFailure(ctx, target, err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	mu.Lock()
	at := dialled
	mu.Unlock()

	if resp.StatusCode != http.StatusOK {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return failf(KindUnauthorized, "GET %s (dialled %s) returned %d: %s",
			final, at, resp.StatusCode, excerpt(string(head), 64))
	}
	// Read one byte past the cap so an oversized body is detected without
	// ever holding more than MaxBody+1 bytes.
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.cfg.MaxBody+1))
	if err != nil {
		return failf(KindConnection, "reading body of GET %s (dialled %s): %s", final, at, errText(ctx, err))
	}
	if int64(len(body)) > v.cfg.MaxBody {
		return failf(KindIncorrectResponse, "GET %s (dialled %s) returned a body larger than %d bytes", final, at, v.cfg.MaxBody)
	}
	// RFC 8555 §8.3: the server SHOULD ignore whitespace at the end of the body.
	got := strings.TrimRight(string(body), " \t\r\n")
	if got != r.KeyAuth {
		return failf(KindIncorrectResponse,
			"The key authorization file from the server did not match this challenge: expected %q got %s (GET %s, dialled %s)",
			r.KeyAuth, excerpt(got, 128), final, at)
	}
	return nil
}

// hostHeader is the Host header for an identifier: the name, or the address
// with IPv6 in brackets as HTTP requires (RFC 9110 §7.2, RFC 8738 §3).
func hostHeader(value string) string {
	if ip, err := netip.ParseAddr(value); err == nil && ip.Is6() {
		return "[" + value + "]"
	}
	return value
}

// checkRedirect enforces RFC 8555 §8.3 / RFC 8738 on redirects: at most
// MaxRedirects, http or https only, and only to the standard ports or the
// ports validation was configured with (so loopback test set-ups work as
// production does on 80/443).
func (v *Validator) checkRedirect(req *http.Request, via []*http.Request) error {
	u := req.URL
	refuse := func(format string, args ...any) error {
		return &redirectError{fmt.Sprintf("redirect from %s to %s refused: ", redactURL(via[len(via)-1].URL), redactURL(u)) +
			fmt.Sprintf(format, args...)}
	}
	if len(via) > v.cfg.MaxRedirects {
		return refuse("too many redirects (more than %d)", v.cfg.MaxRedirects)
	}
	var ports []string
	switch u.Scheme {
	case "http":
		ports = uniq("80", strconv.Itoa(v.cfg.HTTPPort))
	case "https":
		ports = uniq("443", strconv.Itoa(v.cfg.TLSALPNPort))
	default:
		return refuse("only http and https redirects are followed")
	}
	if u.Hostname() == "" {
		return refuse("no host")
	}
	if u.Port() == "" || slices.Contains(ports, u.Port()) {
		return nil
	}
	return refuse("port %s is not allowed for %s (only %s)", u.Port(), u.Scheme, strings.Join(ports, " or "))
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// redactURL drops user info from a URL an applicant sent us before it is
// echoed back in a detail.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// httpFailure maps an error from the HTTP client to a validation failure.
func httpFailure(ctx context.Context, target string, err error) *Error {
	where := target
	var ue *url.Error
	if errors.As(err, &ue) {
		where = ue.URL
		err = ue.Err
	}
	var (
		le *lookupError
		de *dialError
		re *redirectError
		ae tls.AlertError
		rh tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &le):
		return &Error{Kind: KindDNS, Detail: le.Error()}
	case errors.As(err, &de):
		return failf(KindConnection, "fetching %s: %s", where, de.Error())
	case errors.As(err, &re):
		return &Error{Kind: KindConnection, Detail: re.Error()}
	case errors.As(err, &ae), errors.As(err, &rh):
		return failf(KindTLS, "fetching %s: TLS error: %v", where, err)
	default:
		return failf(KindConnection, "fetching %s: %s", where, errText(ctx, err))
	}
}

// errText words an I/O error for a detail, naming a timeout as one.
func errText(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return "timeout"
	}
	return err.Error()
}
