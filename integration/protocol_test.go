package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestDirectoryAndNonce checks the resources every client starts with
// (RFC 8555 §7.1.1, §7.2) and the headers on every response.
func TestDirectoryAndNonce(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--tos-url", "https://ca.example.test/tos"}})
	hc := s.HTTPClient()
	resp, err := hc.Get(s.DirectoryURL())
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]any
	json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	// No nonce and no index link on the directory itself (RFC 8555 §7.1,
	// §7.2); Ruby's acme-client fails on a nonce there.
	if resp.Header.Get("Replay-Nonce") != "" || strings.Contains(resp.Header.Get("Link"), `rel="index"`) {
		t.Errorf("GET directory: %v", resp.Header)
	}
	for _, k := range []string{"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo", "newAuthz"} {
		if u, _ := dir[k].(string); !strings.HasPrefix(u, "https://127.0.0.1:") {
			t.Errorf("directory %s = %v", k, dir[k])
		}
	}
	meta, _ := dir["meta"].(map[string]any)
	if meta == nil || meta["termsOfService"] != "https://ca.example.test/tos" || meta["profiles"] == nil {
		t.Fatalf("directory meta = %v", dir["meta"])
	}
	for method, want := range map[string]int{http.MethodHead: 200, http.MethodGet: 204} {
		req, _ := http.NewRequest(method, dir["newNonce"].(string), nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Replay-Nonce") == "" ||
			resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(resp.Header.Get("Link"), `rel="index"`) {
			t.Errorf("%s newNonce: %d %v", method, resp.StatusCode, resp.Header)
		}
	}
	// Terms are configured: an account must agree to them.
	raw := &rawClient{t: t, s: s, http: hc, key: newAccountKey(t, "ec")}
	status, body, resp := raw.post(dir["newAccount"].(string), map[string]any{})
	if status != http.StatusForbidden || body["type"] != "urn:ietf:params:acme:error:userActionRequired" || resp.Header.Get("Replay-Nonce") == "" {
		t.Fatalf("newAccount without agreeing: %d %v", status, body)
	}
	status, _, resp = raw.post(dir["newAccount"].(string), map[string]any{"termsOfServiceAgreed": true})
	if status != http.StatusCreated || resp.Header.Get("Location") == "" {
		t.Fatalf("newAccount agreeing: %d", status)
	}
}

// TestOrdersListAndAuthzLifecycle: the account's orders list pages with
// Link rel="next" (RFC 8555 §7.1.2.1); deactivating an authorization
// invalidates its order (§7.5.2); --reuse-authz reuses a valid one.
func TestOrdersListAndAuthzLifecycle(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--reuse-authz"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newXClient(t, s)
	acct, err := c.GetReg(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var first *acme.Order
	for i := 0; i < 101; i++ {
		o, err := c.AuthorizeOrder(ctx, acme.DomainIDs("list.test"))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = o
		}
	}
	raw := &rawClient{t: t, s: s, http: s.HTTPClient(), key: c.Key, kid: acct.URI}
	var all []string
	next := acct.OrdersURL
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("orders list does not end")
		}
		status, body, resp := raw.post(next, nil)
		if status != http.StatusOK {
			t.Fatalf("orders list: %d %v", status, body)
		}
		for _, u := range body["orders"].([]any) {
			all = append(all, u.(string))
		}
		next = ""
		for _, l := range resp.Header.Values("Link") {
			if strings.Contains(l, `rel="next"`) {
				next = strings.Trim(strings.SplitN(l, ";", 2)[0], "<>")
			}
		}
	}
	if len(all) != 101 || all[0] != first.URI {
		t.Fatalf("orders list has %d orders starting %q, want 101 starting %q", len(all), all[0], first.URI)
	}

	// Deactivation (§7.5.2): the authorization and its order give up.
	status, body, _ := raw.post(first.AuthzURLs[0], map[string]string{"status": "deactivated"})
	if status != http.StatusOK || body["status"] != "deactivated" {
		t.Fatalf("deactivate authz: %d %v", status, body)
	}
	if o, err := c.GetOrder(ctx, first.URI); err != nil || o.Status != acme.StatusInvalid {
		t.Fatalf("order after its authorization was deactivated: %v %v", err, o.Status)
	}

	// Reuse: once an authorization for a name is valid, the next order
	// for it is ready at once and carries the same authorization.
	stop := serveHTTP01(t, s, func(token string) string { ka, _ := c.HTTP01ChallengeResponse(token); return ka })
	defer stop()
	if err := validateOne(ctx, t, c, "reuse.test", "http-01"); err != nil {
		t.Fatal(err)
	}
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs("reuse.test"))
	if err != nil || o.Status != acme.StatusReady {
		t.Fatalf("order with a reusable authorization: %v %v, want ready", err, o)
	}
}
