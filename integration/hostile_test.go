package integration

import (
	"bytes"
	"context"
	"crypto"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", to read the server's DB

	"github.com/certmint/certmint/acme/jws"
)

// TestHostileRequests crosses every ACME POST resource with the malformed
// and hostile requests a public endpoint gets. Each must be answered with
// exactly the RFC 8555 problem type and status, as application/problem+json,
// with a fresh nonce that then works, and must change nothing in the
// database.
func TestHostileRequests(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	base := fmt.Sprintf("https://127.0.0.1:%d", s.Port)

	// alice owns one of everything; bob is another account; carol is
	// deactivated.
	alice := newXClient(t, s)
	stop := serveHTTP01(t, s, func(token string) string {
		ka, _ := alice.HTTP01ChallengeResponse(token)
		return ka
	})
	order := readyOrder(ctx, t, alice, "hostile.test")
	stop()
	ders, certURL, err := alice.CreateOrderCert(ctx, order.FinalizeURL, makeCSR(t, nil, "hostile.test"), true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	pending, err := alice.AuthorizeOrder(ctx, acme.DomainIDs("pending.hostile.test"))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := alice.GetAuthorization(ctx, pending.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	aliceAcct, err := alice.GetReg(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	bob := newXClient(t, s)
	bobAcct, _ := bob.GetReg(ctx, "")
	carol := newXClient(t, s)
	carolAcct, _ := carol.GetReg(ctx, "")
	if err := carol.DeactivateReg(ctx); err != nil {
		t.Fatal(err)
	}
	raw := func(key crypto.Signer, kid string) *rawClient {
		return &rawClient{t: t, s: s, http: s.HTTPClient(), key: key, kid: kid}
	}
	ra := raw(alice.Key, aliceAcct.URI)

	var huge []map[string]string
	for i := range 500 {
		huge = append(huge, map[string]string{"type": "dns", "value": fmt.Sprintf("h%d.hostile.test", i)})
	}
	certB64 := base64.RawURLEncoding.EncodeToString(ders[0])

	// endpoint is one POST resource: a payload that would change state if
	// the request got through, and how it is signed.
	type endpoint struct {
		name     string
		url      string
		payload  func(url, kid string) []byte // nil: POST-as-GET
		jwkOnly  bool                         // newAccount
		perAcct  bool                         // belongs to alice: bob must be refused
		newOrder bool
	}
	jsonOf := func(v any) func(string, string) []byte {
		return func(string, string) []byte { b, _ := json.Marshal(v); return b }
	}
	endpoints := []endpoint{
		{name: "new-account", url: base + "/acme/new-account", jwkOnly: true,
			payload: jsonOf(map[string]any{"termsOfServiceAgreed": true})},
		{name: "account", url: aliceAcct.URI, perAcct: true, payload: jsonOf(map[string]any{"status": "deactivated"})},
		{name: "account-orders", url: aliceAcct.URI + "/orders", perAcct: true},
		{name: "key-change", url: base + "/acme/key-change", perAcct: true,
			payload: func(url, kid string) []byte {
				// The inner JWS names alice's account: signed by bob it
				// is another account's resource.
				oldKey, _ := jws.MarshalJWK(alice.Key.Public())
				inner, _ := json.Marshal(map[string]any{"account": aliceAcct.URI, "oldKey": json.RawMessage(oldKey)})
				msg, err := jws.Sign(newAccountKey(t, "ec"), "", jws.Header{URL: url}, inner)
				if err != nil {
					t.Fatal(err)
				}
				return msg
			}},
		{name: "new-order", url: base + "/acme/new-order", newOrder: true,
			payload: jsonOf(map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "new.hostile.test"}}})},
		{name: "new-authz", url: base + "/acme/new-authz",
			payload: jsonOf(map[string]any{"identifier": map[string]string{"type": "dns", "value": "pre.hostile.test"}})},
		{name: "order", url: order.URI, perAcct: true},
		{name: "finalize", url: order.FinalizeURL, perAcct: true,
			payload: jsonOf(map[string]string{"csr": base64.RawURLEncoding.EncodeToString(makeCSR(t, nil, "hostile.test"))})},
		{name: "authz", url: authz.URI, perAcct: true, payload: jsonOf(map[string]string{"status": "deactivated"})},
		{name: "chall", url: authz.Challenges[0].URI, perAcct: true, payload: jsonOf(map[string]any{})},
		{name: "cert", url: certURL, perAcct: true},
		{name: "revoke-cert", url: base + "/acme/revoke-cert", perAcct: true,
			payload: jsonOf(map[string]any{"certificate": certB64, "reason": 1})},
	}

	// signed builds a JWS for ep: with key/kid, nonce and url as given.
	signed := func(ep endpoint, key crypto.Signer, kid, nonce, url string) []byte {
		t.Helper()
		if ep.jwkOnly && kid != "" && !strings.HasPrefix(kid, "!") {
			kid = "" // newAccount is signed with the jwk of key
		}
		kid = strings.TrimPrefix(kid, "!")
		var payload []byte
		if ep.payload != nil {
			payload = ep.payload(url, kid)
		}
		msg, err := jws.Sign(key, "", jws.Header{Nonce: nonce, URL: url, KID: kid}, payload)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// aliceKID is alice's kid, or for newAccount a fresh key's jwk, so a
	// request that got through would create a new account.
	signer := func(ep endpoint) (crypto.Signer, string) {
		if ep.jwkOnly {
			return newAccountKey(t, "ec"), ""
		}
		return alice.Key, aliceAcct.URI
	}

	// hostile is one kind of bad request: it returns method, content
	// type and body for ep, or skip.
	type hostile struct {
		name   string
		req    func(ep endpoint) (method, ctype string, body []byte, skip bool)
		typ    string
		status int
		// per endpoint overrides of the expected type
		override func(ep endpoint) (string, int, bool)
	}
	const jose = "application/jose+json"
	valid := func(ep endpoint) []byte {
		key, kid := signer(ep)
		return signed(ep, key, kid, ra.nonce(), ep.url)
	}
	cases := []hostile{
		{name: "wrong-content-type", typ: "malformed", status: 415,
			req: func(ep endpoint) (string, string, []byte, bool) { return "POST", "application/json", valid(ep), false }},
		{name: "empty-body", typ: "malformed", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) { return "POST", jose, nil, false }},
		{name: "oversized-body", typ: "malformed", status: 413,
			req: func(ep endpoint) (string, string, []byte, bool) {
				return "POST", jose, append([]byte(`{"protected":"`), bytes.Repeat([]byte("A"), 65<<10)...), false
			}},
		{name: "broken-json", typ: "malformed", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				b := valid(ep)
				return "POST", jose, b[:len(b)/2], false
			}},
		{name: "wrong-method", typ: "malformed", status: 405,
			req: func(ep endpoint) (string, string, []byte, bool) { return "GET", "", nil, false }},
		{name: "unknown-nonce", typ: "badNonce", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				key, kid := signer(ep)
				forged := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
				return "POST", jose, signed(ep, key, kid, forged, ep.url), false
			}},
		{name: "replayed-nonce", typ: "badNonce", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				n := ra.nonce()
				if code, _, _ := ra.send(aliceAcct.URI, jose, signed(endpoint{}, alice.Key, aliceAcct.URI, n, aliceAcct.URI)); code != 200 {
					t.Fatalf("using a nonce: %d", code)
				}
				key, kid := signer(ep)
				return "POST", jose, signed(ep, key, kid, n, ep.url), false
			}},
		{name: "missing-nonce", typ: "badNonce", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				key, kid := signer(ep)
				return "POST", jose, signed(ep, key, kid, "", ep.url), false
			}},
		{name: "url-mismatch", typ: "unauthorized", status: 403,
			req: func(ep endpoint) (string, string, []byte, bool) {
				key, kid := signer(ep)
				return "POST", jose, signed(ep, key, kid, ra.nonce(), base+"/acme/new-order"+"x"), false
			}},
		{name: "unknown-kid", typ: "accountDoesNotExist", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				return "POST", jose, signed(ep, alice.Key, "!"+base+"/acme/account/no-such-account", ra.nonce(), ep.url), false
			},
			// newAccount takes no kid at all (RFC 8555 §7.3).
			override: func(ep endpoint) (string, int, bool) { return "malformed", 400, ep.jwkOnly }},
		{name: "deactivated-account", typ: "unauthorized", status: 403,
			req: func(ep endpoint) (string, string, []byte, bool) {
				return "POST", jose, signed(ep, carol.Key, carolAcct.URI, ra.nonce(), ep.url), false
			}},
		{name: "other-account", typ: "unauthorized", status: 403,
			req: func(ep endpoint) (string, string, []byte, bool) {
				return "POST", jose, signed(ep, bob.Key, bobAcct.URI, ra.nonce(), ep.url), !ep.perAcct
			}},
		{name: "huge-identifiers", typ: "rejectedIdentifier", status: 400,
			req: func(ep endpoint) (string, string, []byte, bool) {
				b, _ := json.Marshal(map[string]any{"identifiers": huge})
				msg, err := jws.Sign(alice.Key, "", jws.Header{Nonce: ra.nonce(), URL: ep.url, KID: aliceAcct.URI}, b)
				if err != nil {
					t.Fatal(err)
				}
				return "POST", jose, msg, !ep.newOrder
			}},
	}

	db := openDB(t, s)
	before := dbState(t, db)
	hc := s.HTTPClient()
	for _, ep := range endpoints {
		for _, hc0 := range cases {
			method, ctype, body, skip := hc0.req(ep)
			if skip {
				continue
			}
			t.Run(ep.name+"/"+hc0.name, func(t *testing.T) {
				typ, status := hc0.typ, hc0.status
				if hc0.override != nil {
					if ot, os, ok := hc0.override(ep); ok {
						typ, status = ot, os
					}
				}
				req, _ := http.NewRequestWithContext(ctx, method, ep.url, bytes.NewReader(body))
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var p struct {
					Type   string `json:"type"`
					Detail string `json:"detail"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(data, &p); err != nil {
					t.Fatalf("%d %q: body is not JSON: %v", resp.StatusCode, data, err)
				}
				if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", got)
				}
				if p.Type != "urn:ietf:params:acme:error:"+typ || resp.StatusCode != status || p.Status != status {
					t.Errorf("got %s %d (body status %d) %q, want %s %d", p.Type, resp.StatusCode, p.Status, p.Detail, typ, status)
				}
				if method == http.MethodGet && resp.Header.Get("Allow") != http.MethodPost {
					t.Errorf("405 with Allow %q, want POST", resp.Header.Get("Allow"))
				}
				// A GET is answered without a nonce (RFC 8555 §6.5 and §7.2
				// put them on POST answers and newNonce only).
				if method != http.MethodPost {
					if n := resp.Header.Get("Replay-Nonce"); n != "" {
						t.Errorf("Replay-Nonce on a %s answer", method)
					}
					return
				}
				// The nonce of an error works for the next request (RFC 8555 §6.5).
				n := resp.Header.Get("Replay-Nonce")
				if n == "" {
					t.Fatal("no Replay-Nonce on the error")
				}
				code, out, _ := ra.send(aliceAcct.URI, jose, signed(endpoint{}, alice.Key, aliceAcct.URI, n, aliceAcct.URI))
				if code != http.StatusOK {
					t.Errorf("the error's nonce did not work: %d %v", code, out)
				}
				if after := dbState(t, db); after != before {
					t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
}

// openDB opens the server's SQLite database read-only, beside the running
// server (WAL lets both read).
func openDB(t testing.TB, s *Server) *sql.DB {
	t.Helper()
	dsn := "file:" + filepath.Join(s.Data, "certmint.db") + "?mode=ro&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dbState summarizes the ACME tables: rows per table and status, and the
// revoked certificates.
func dbState(t testing.TB, db *sql.DB) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT 'accounts', status, COUNT(*) FROM accounts GROUP BY status",
		"SELECT 'orders', status, COUNT(*) FROM orders GROUP BY status",
		"SELECT 'authorizations', status, COUNT(*) FROM authorizations GROUP BY status",
		"SELECT 'challenges', status, COUNT(*) FROM challenges GROUP BY status",
		"SELECT 'certificates', revoked, COUNT(*) FROM certificates GROUP BY revoked",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var table, status string
			var n int
			if err := rows.Scan(&table, &status, &n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s/%s=%d", table, status, n))
		}
		rows.Close()
	}
	return strings.Join(out, " ")
}
