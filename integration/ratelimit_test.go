package integration

import (
	"crypto"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRateLimitNewOrder: with --rate-limit-new-order-per-account 3/3s the
// fourth newOrder of an account in the window is refused with rateLimited
// and a Retry-After (RFC 8555 §6.7), another account is not affected, and
// the account can order again once the window has passed.
func TestRateLimitNewOrder(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--rate-limit-new-order-per-account", "3/3s"}})
	newOrderURL := strings.Replace(s.DirectoryURL(), "directory", "new-order", 1)
	account := func() *rawClient {
		_, user := newLegoClient(t, s, "ec")
		return &rawClient{t: t, s: s, http: s.HTTPClient(), key: user.key.(crypto.Signer), kid: user.reg.URI}
	}
	order := func(c *rawClient, i int) (int, map[string]any, *http.Response) {
		return c.post(newOrderURL, map[string]any{
			"identifiers": []map[string]string{{"type": "dns", "value": "rl" + strconv.Itoa(i) + ".ratelimit.test"}}})
	}

	alice := account()
	var status int
	var body map[string]any
	var resp *http.Response
	// The window may roll over while we order; then the fourth order
	// starts a new one and succeeds. Orders until the limit trips, at
	// most two windows' worth.
	tripped := 0
	for i := 1; i <= 7; i++ {
		status, body, resp = order(alice, i)
		if status == http.StatusTooManyRequests {
			tripped = i
			break
		}
		if status != http.StatusCreated {
			t.Fatalf("newOrder %d: %d %v", i, status, body)
		}
	}
	if tripped == 0 {
		t.Fatal("seven newOrders within about two 3s windows were never rate-limited")
	}
	if tripped < 4 {
		t.Fatalf("newOrder %d was rate-limited, the limit is 3", tripped)
	}
	if body["type"] != "urn:ietf:params:acme:error:rateLimited" {
		t.Fatalf("refusal: %v, want rateLimited", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("refusal Content-Type %q", ct)
	}
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Error("no Replay-Nonce on the refusal")
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 3 {
		t.Fatalf("Retry-After %q, want 1..3 seconds", resp.Header.Get("Retry-After"))
	}

	// Per account: another account orders freely meanwhile.
	if status, body, _ := order(account(), 100); status != http.StatusCreated {
		t.Fatalf("another account's newOrder: %d %v", status, body)
	}

	// After Retry-After the account can order again.
	time.Sleep(time.Duration(retry)*time.Second + 200*time.Millisecond)
	if status, body, _ := order(alice, 200); status != http.StatusCreated {
		t.Fatalf("newOrder after the window: %d %v", status, body)
	}
}
