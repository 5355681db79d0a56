package integration

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	legov5acme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	legov5 "github.com/go-acme/lego/v5/lego"
	legov5log "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
)

// persistIssuer is the issuer domain name the dns-persist-01 tests run
// the server with.
const persistIssuer = "ca.certmint.test"

type legoV5User struct {
	key crypto.Signer
	reg *legov5acme.ExtendedAccount
}

func (u *legoV5User) GetEmail() string                             { return "" }
func (u *legoV5User) GetRegistration() *legov5acme.ExtendedAccount { return u.reg }
func (u *legoV5User) GetPrivateKey() crypto.Signer                 { return u.key }

// newLegoV5PersistClient registers an account with lego v5's library and
// gives it lego's dns-persist-01 solver only, reading TXT records from the
// test's DNS server. When lego finds no matching record it "publishes" one
// by waiting 0 s (the manual provider's wait mode), so the server still
// gets to judge the DNS it sees.
func newLegoV5PersistClient(t *testing.T, s *Server) (*legov5.Client, string) {
	t.Helper()
	t.Setenv("DNSPERSIST_MANUAL_MODE", "wait")
	t.Setenv("DNSPERSIST_MANUAL_WAIT", "0")
	t.Setenv("DNSPERSIST_MANUAL_POLLING_INTERVAL", "0")
	t.Setenv("DNSPERSIST_MANUAL_PROPAGATION_TIMEOUT", "10")
	legov5log.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	dnspersist01.SetDefaultClient(dnspersist01.NewClient(&dnspersist01.Options{RecursiveNameservers: []string{s.DNS.Addr}}))

	user := &legoV5User{key: newAccountKey(t, "ec")}
	cfg := legov5.NewConfig(user)
	cfg.CADirURL = s.DirectoryURL()
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.Roots}}}
	client, err := legov5.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego v5 client: %v", err)
	}
	if err := client.Challenge.SetDNSPersist01(dnspersist01.PropagationWait(0, true)); err != nil {
		t.Fatal(err)
	}
	reg, err := client.Registration.Register(context.Background(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("lego v5 register: %v", err)
	}
	user.reg = reg
	return client, reg.Location
}

// TestDNSPersist01LegoV5: lego v5's dns-persist-01 solver gets a
// certificate for a name whose _validation-persist record names this CA
// and the account; none when the record names another account or another
// issuer; a wildcard only with policy=wildcard, which also covers names
// below (draft-ietf-acme-dns-persist §4, §5).
func TestDNSPersist01LegoV5(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--dns-persist-issuer", persistIssuer, "--reuse-authz"}})
	client, acct := newLegoV5PersistClient(t, s)
	_, other := newLegoV5PersistClient(t, s)
	var dir struct {
		Meta struct {
			IssuerDomainNames []string `json:"issuerDomainNames"`
			AccountHashPrefix string   `json:"accountHashPrefix"`
		} `json:"meta"`
	}
	base := strings.TrimSuffix(s.DirectoryURL(), "/acme/directory")
	resp, err := s.HTTPClient().Get(s.DirectoryURL())
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil || len(dir.Meta.IssuerDomainNames) != 1 || dir.Meta.IssuerDomainNames[0] != persistIssuer ||
		dir.Meta.AccountHashPrefix != base+"/acme/account-hash/" {
		t.Errorf("directory meta = %+v (%v)", dir.Meta, err)
	}
	ctx := context.Background()
	publish := func(name, value string) {
		s.DNS.ClearTXT("_validation-persist." + name)
		s.DNS.SetTXT("_validation-persist."+name, value)
	}
	obtain := func(names ...string) (*certificate.Resource, error) {
		return client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, Bundle: true, KeyType: certcrypto.EC256})
	}
	refused := func(t *testing.T, err error, why string) {
		t.Helper()
		if err == nil {
			t.Fatal("a certificate was issued")
		}
		if !strings.Contains(err.Error(), "unauthorized") || !strings.Contains(err.Error(), why) {
			t.Fatalf("refusal %v does not say unauthorized / %q", err, why)
		}
	}

	t.Run("challenge-object", func(t *testing.T) {
		// draft -01 §3.1 (and -02's spelling of the names); no token.
		raw := &rawClient{t: t, s: s, http: s.HTTPClient(), key: newAccountKey(t, "ec")}
		_, _, resp := raw.post(base+"/acme/new-account", map[string]any{"termsOfServiceAgreed": true})
		raw.kid = resp.Header.Get("Location")
		_, order, _ := raw.post(base+"/acme/new-order", map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "*.obj.persist.test"}}})
		authzURL, _ := order["authorizations"].([]any)[0].(string)
		_, authz, _ := raw.post(authzURL, nil)
		var ch map[string]any
		for _, c := range authz["challenges"].([]any) {
			if c := c.(map[string]any); c["type"] == "dns-persist-01" {
				ch = c
			}
		}
		names := fmt.Sprint([]any{persistIssuer})
		if ch == nil || ch["accounturi"] != raw.kid || fmt.Sprint(ch["issuer-domain-names"]) != names ||
			fmt.Sprint(ch["issuerDomainNames"]) != names || ch["token"] != nil {
			t.Fatalf("dns-persist-01 challenge of a wildcard authorization: %v", authz)
		}
	})
	t.Run("ok", func(t *testing.T) {
		// The record the operator is told to publish.
		id := acct[strings.LastIndex(acct, "/")+1:]
		out, errOut, code := runCLI(t, nil, "admin", "dns-persist-record", "--data", s.Data, "--account", id,
			"--name", "persist.test", "--dns-persist-issuer", persistIssuer,
			"--server", s.DirectoryURL())
		want := `_validation-persist.persist.test. IN TXT "` + persistIssuer + `; accounturi=` + acct + `"` + "\n"
		if code != 0 || out != want {
			t.Fatalf("admin dns-persist-record: %d %q %s, want %q", code, out, errOut, want)
		}
		publish("persist.test", persistIssuer+"; accounturi="+acct)
		res, err := obtain("persist.test")
		if err != nil {
			t.Fatalf("obtain: %v\n%s", err, s.Output())
		}
		if leaf := parseLeaf(t, res.Certificate); len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "persist.test" {
			t.Fatalf("certificate for %v", leaf.DNSNames)
		}
		// With --reuse-authz the valid authorization serves the next
		// order: it needs no record look-up (the record is gone now).
		s.DNS.ClearTXT("_validation-persist.persist.test")
		if _, err := obtain("persist.test"); err != nil {
			t.Fatalf("second obtain, reusing the authorization: %v", err)
		}
	})
	t.Run("persistUntil", func(t *testing.T) {
		// A record that lapses in 30 minutes validates, but the
		// authorization expires with it (draft §4.1 item 5), too soon to be
		// reused (reuse wants an hour left): the next order looks again.
		until := time.Now().Add(30 * time.Minute).Unix()
		publish("until.persist.test", persistIssuer+"; accounturi="+acct+"; persistUntil="+strconv.FormatInt(until, 10))
		if _, err := obtain("until.persist.test"); err != nil {
			t.Fatalf("obtain with persistUntil ahead: %v", err)
		}
		s.DNS.ClearTXT("_validation-persist.until.persist.test")
		_, err := obtain("until.persist.test")
		refused(t, err, "names this CA")
		publish("until.persist.test", persistIssuer+"; accounturi="+acct+"; persistUntil="+strconv.FormatInt(time.Now().Unix()-1, 10))
		_, err = obtain("until.persist.test")
		refused(t, err, "persistUntil has passed")
	})
	t.Run("hashed", func(t *testing.T) {
		// A draft -02 record names the account by a hashed URI, which lego
		// v5.6.0 does not write; the server accepts it all the same.
		out, errOut, code := runCLI(t, nil, "admin", "dns-persist-record", "--data", s.Data,
			"--account", acct[strings.LastIndex(acct, "/")+1:], "--name", "hashed.persist.test", "--hashed",
			"--dns-persist-issuer", persistIssuer, "--server", s.DirectoryURL())
		value, err := strconv.Unquote(strings.TrimSpace(out[strings.Index(out, "TXT ")+4:]))
		if code != 0 || err != nil || !strings.HasPrefix(value, persistIssuer+"; accounturi="+base+"/acme/account-hash/sha-256/") {
			t.Fatalf("admin dns-persist-record --hashed: %d %q %s", code, out, errOut)
		}
		publish("hashed.persist.test", value)
		if _, err := obtain("hashed.persist.test"); err != nil {
			t.Fatalf("obtain with a hashed accounturi: %v", err)
		}
		// The same hash does not serve another name.
		publish("other-hashed.persist.test", value)
		_, err = obtain("other-hashed.persist.test")
		refused(t, err, "another account")
	})
	t.Run("other-account", func(t *testing.T) {
		publish("acct.persist.test", persistIssuer+"; accounturi="+other)
		_, err := obtain("acct.persist.test")
		refused(t, err, "another account")
	})
	t.Run("other-issuer", func(t *testing.T) {
		publish("issuer.persist.test", "other-ca.test; accounturi="+acct)
		_, err := obtain("issuer.persist.test")
		refused(t, err, "names this CA")
	})
	t.Run("wildcard", func(t *testing.T) {
		publish("wild.persist.test", persistIssuer+"; accounturi="+acct)
		_, err := obtain("*.wild.persist.test")
		refused(t, err, "policy=wildcard")

		publish("wild.persist.test", persistIssuer+"; accounturi="+acct+"; policy=wildcard")
		res, err := obtain("*.wild.persist.test")
		if err != nil {
			t.Fatalf("wildcard with policy=wildcard: %v", err)
		}
		if leaf := parseLeaf(t, res.Certificate); len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "*.wild.persist.test" {
			t.Fatalf("certificate for %v", leaf.DNSNames)
		}
		// The same record covers a name below it (§5.1).
		if _, err := obtain("deep.down.wild.persist.test"); err != nil {
			t.Fatalf("subdomain under policy=wildcard: %v", err)
		}
	})
}

// TestAgentDNSPersistOnce: `certmint agent --dns-persist --once` gets a
// certificate with no DNS credentials and no listener, once the operator
// has published the record `admin dns-persist-record` prints for the
// agent's account; before that it fails, saying what the server found.
func TestAgentDNSPersistOnce(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--dns-persist-issuer", persistIssuer}})
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"agent", "--server", s.DirectoryURL(), "--root-fingerprint", rootFingerprint(t, s),
		"--out", out, "--name", "agent.persist.test", "--dns-persist", "--once"}
	_, stderr, code := runCLI(t, nil, args...)
	t.Logf("first run: %s", stderr)
	if code != 1 || !strings.Contains(stderr, "_validation-persist.agent.persist.test") {
		t.Fatalf("agent without the record: exit %d, want 1 naming the record: %s", code, stderr)
	}
	// The account the first run registered is the one the record names.
	var af struct {
		Registration struct {
			URI string `json:"uri"`
		} `json:"registration"`
	}
	data, err := os.ReadFile(filepath.Join(out, "account.json"))
	if err != nil || json.Unmarshal(data, &af) != nil || af.Registration.URI == "" {
		t.Fatalf("account.json: %v %s", err, data)
	}
	acct := af.Registration.URI
	if !strings.Contains(stderr, "accounturi="+acct) {
		t.Errorf("the first run's error does not name the account the record needs: %s", stderr)
	}
	rec, errOut, code := runCLI(t, nil, "admin", "dns-persist-record", "--data", s.Data,
		"--account", acct[strings.LastIndex(acct, "/")+1:], "--name", "agent.persist.test",
		"--dns-persist-issuer", persistIssuer, "--hostname", "127.0.0.1", "--listen", "127.0.0.1:"+strconv.Itoa(s.Port))
	if code != 0 {
		t.Fatalf("admin dns-persist-record: %d %s", code, errOut)
	}
	// Publish the value as the operator would from the printed line.
	value, err := strconv.Unquote(strings.TrimSpace(rec[strings.Index(rec, "TXT ")+4:]))
	if err != nil || !strings.Contains(value, "accounturi="+acct) {
		t.Fatalf("printed record %q (%v) does not name %s", rec, err, acct)
	}
	s.DNS.SetTXT("_validation-persist.agent.persist.test", value)

	start := time.Now()
	if _, stderr, code := runCLI(t, nil, args...); code != 0 {
		t.Fatalf("agent --dns-persist --once: exit %d: %s\n%s", code, stderr, s.Output())
	}
	t.Logf("agent --dns-persist --once in %s", time.Since(start).Round(time.Millisecond))
	certPEM, err := os.ReadFile(filepath.Join(out, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseLeaf(t, certPEM); len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "agent.persist.test" {
		t.Fatalf("certificate for %v", leaf.DNSNames)
	}
}

// TestDNSPersistUsage: bad dns-persist-01 settings are one line on stderr
// and exit status 2, with nothing written.
func TestDNSPersistUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--data", data, "--dns-persist-issuer", "not a name!"}, "--dns-persist-issuer"},
		{[]string{"admin", "dns-persist-record", "--data", data, "--name", "svc.test"}, "--account"},
		{[]string{"admin", "dns-persist-record", "--data", data, "--account", "x", "--name", "svc.test"}, "--dns-persist-issuer"},
		{[]string{"agent", "--server", "https://127.0.0.1:1/acme/directory", "--root", "r.pem", "--name", "x.test",
			"--out", filepath.Join(data, "out"), "--dns-persist", "--dns01-hook", "true"}, "only one of"},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line about %s", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("something was written to %s: %v", data, err)
	}
}
