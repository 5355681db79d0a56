package integration

import (
	"context"
	"crypto"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestChallengeAnswer: the response to a challenge POST (RFC 8555 §7.5.1)
// carries the final state when the validation is quick, valid or invalid,
// so clients need not poll; a validation slower than the server's 2 s
// wait answers processing and still completes in the background.
func TestChallengeAnswer(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newXClient(t, s)
	var delay atomic.Int64
	var wrong atomic.Bool
	stop := serveHTTP01(t, s, func(token string) string {
		time.Sleep(time.Duration(delay.Load()))
		if wrong.Load() {
			return token + ".not-the-thumbprint"
		}
		ka, _ := c.HTTP01ChallengeResponse(token)
		return ka
	})
	defer stop()

	// The challenge POSTs are sent raw, to see the response as sent.
	raw := &rawClient{t: t, s: s, http: s.HTTPClient(), key: c.Key.(crypto.Signer), kid: string(c.KID)}

	// accept orders name and answers its http-01 challenge; it returns the
	// order, the authorization URL, the challenge response and its timing.
	accept := func(t *testing.T, name string) (*acme.Order, string, map[string]any, *http.Response, time.Duration) {
		t.Helper()
		raw.t = t
		order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
		if err != nil {
			t.Fatal(err)
		}
		authz, err := c.GetAuthorization(ctx, order.AuthzURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range authz.Challenges {
			if ch.Type == "http-01" {
				start := time.Now()
				code, body, resp := raw.post(ch.URI, map[string]any{})
				if code != http.StatusOK {
					t.Fatalf("challenge POST: HTTP %d %v", code, body)
				}
				return order, authz.URI, body, resp, time.Since(start)
			}
		}
		t.Fatal("no http-01 challenge offered")
		return nil, "", nil, nil, 0
	}

	t.Run("quick-valid", func(t *testing.T) {
		order, _, ch, resp, _ := accept(t, "quick.test")
		// §7.1.5: "validated" is required once the challenge is valid.
		if ch["status"] != "valid" || ch["validated"] == nil || ch["validated"] == "" {
			t.Fatalf("challenge answer %v, want valid with a validated time", ch)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on a finished challenge", ra)
		}
		// The order became ready in the same step (§7.1.6).
		o, err := c.GetOrder(ctx, order.URI)
		if err != nil || o.Status != acme.StatusReady {
			t.Fatalf("order: %v, status %v, want ready", err, o.Status)
		}
	})
	t.Run("quick-invalid", func(t *testing.T) {
		wrong.Store(true)
		defer wrong.Store(false)
		_, _, ch, _, _ := accept(t, "quickwrong.test")
		problem, _ := ch["error"].(map[string]any)
		if ch["status"] != "invalid" || problem["type"] != "urn:ietf:params:acme:error:incorrectResponse" {
			t.Fatalf("challenge answer %v, want invalid with incorrectResponse", ch)
		}
	})
	t.Run("slow", func(t *testing.T) {
		delay.Store(int64(3 * time.Second))
		defer delay.Store(0)
		_, authzURL, ch, resp, took := accept(t, "slow.test")
		if ch["status"] != "processing" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("challenge answer %v, Retry-After %q, want processing with Retry-After", ch, resp.Header.Get("Retry-After"))
		}
		if took < 1500*time.Millisecond || took > 2900*time.Millisecond {
			t.Fatalf("challenge POST answered after %v, want about 2 s", took)
		}
		a, err := c.WaitAuthorization(ctx, authzURL)
		if err != nil || a.Status != acme.StatusValid {
			t.Fatalf("authorization after the slow validation: %v, %+v", err, a)
		}
	})
}
