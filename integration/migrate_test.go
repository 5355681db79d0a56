package integration

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"

	"github.com/certmint/certmint/tools/pgtest"
)

// TestMigrateSQLiteToPostgres is the move a team makes when it outgrows
// the embedded database (docs/backup.md): a SQLite server with accounts,
// an EAB-bound account, a revocation, a rotated intermediate and a console
// user is backed up, restored into Postgres and served by two replicas
// behind a load balancer on the old address. The agent registered before
// the move renews after it with the same account, the console user signs
// in, the revocation is still on its CRL.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	s := StartServer(t, ServerOptions{Env: passEnv, Args: []string{"--ca-poll", "200ms"}})

	// Before the move: an account bound with an EAB key, a revoked
	// certificate, an agent, a console user, a rotated intermediate.
	kid, hmac := eabCreate(t, s, "--label", "team-a")
	eabLego, err := newLegoEABClient(t, s, kid, hmac)
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	if _, err := eabLego.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"eab.migrate.test"}, Bundle: true}); err != nil {
		t.Fatalf("obtain with the EAB account: %v", err)
	}
	lego, _ := newLegoClient(t, s, "ec")
	res, err := lego.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"revoked.migrate.test"}, Bundle: true})
	if err != nil {
		t.Fatal(err)
	}
	revoked := parseLeaf(t, res.Certificate)
	reason := uint(4) // superseded
	if err := lego.Certificate.RevokeWithReason(res.Certificate, &reason); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	oldIssuer := chainIssuer(t, res.Certificate)

	agentOut := filepath.Join(t.TempDir(), "agent")
	agentArgs := []string{"agent", "--server", s.DirectoryURL(), "--out", agentOut, "--name", "agent.migrate.test",
		"--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort), "--root-fingerprint", rootFingerprint(t, s), "--once"}
	stdout, errOut, code := runCLI(t, nil, agentArgs...)
	if code != 0 || !strings.HasPrefix(stdout, "obtained ") {
		t.Fatalf("agent --once before the move: exit %d: %s%s", code, stdout, errOut)
	}
	account, _ := os.ReadFile(filepath.Join(agentOut, "account.json"))
	agentLeaf := readLeaf(t, filepath.Join(agentOut, "cert.pem"))

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("alice's long passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, nil, "admin", "user", "add", "alice", "--role", "operator", "--data", s.Data, "--password-file", pwFile); code != 0 {
		t.Fatalf("admin user add: %s", errOut)
	}
	if out, errOut, code := runCLI(t, passEnv, "ca", "rotate", "intermediate", "--data", s.Data); code != 0 {
		t.Fatalf("ca rotate intermediate: %s%s", out, errOut)
	}
	var newIssuer *x509.Certificate
	deadline := time.Now().Add(10 * time.Second)
	for newIssuer == nil || newIssuer.Equal(oldIssuer) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not switch to the rotated intermediate")
		}
		res, err := lego.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"rotated.migrate.test"}, Bundle: true})
		if err != nil {
			t.Fatal(err)
		}
		newIssuer = chainIssuer(t, res.Certificate)
	}

	// The move: back up (online), stop, restore into Postgres, and start
	// two replicas with empty data directories behind a proxy that takes
	// the old server's address.
	file := backupFile(t, s)
	before := storedCerts(t, s)
	s.Stop()
	dsn := pgtest.Start(t)
	if out, errOut, code := runCLI(t, passEnv, "restore", "--in", file, "--db", dsn); code != 0 {
		t.Fatalf("restore into Postgres: exit %d: %s%s", code, out, errOut)
	}
	a, b := startOnDB(t, s, dsn), startOnDB(t, s, dsn)
	proxy := startProxyOn(t, fmt.Sprintf("127.0.0.1:%d", s.Port), fmt.Sprintf("127.0.0.1:%d", a.Port), fmt.Sprintf("127.0.0.1:%d", b.Port))
	front := &Server{t: t, Port: s.Port, HTTPPort: s.HTTPPort, TLSPort: s.TLSPort, DNS: s.DNS, RootPEM: s.RootPEM, Roots: s.Roots}

	after := storedCerts(t, a)
	for serial, c := range before {
		if got, ok := after[serial]; !ok || got != c {
			t.Errorf("certificate %s: %+v before the move, %+v (present %v) after", serial, c, got, ok)
		}
	}
	if !after[serialOf(revoked)].revoked {
		t.Error("the revoked certificate is not revoked after the move")
	}
	// The revocation is on the old intermediate's CRL, which the
	// replicas keep signing (it is retiring, not gone).
	u, _ := url.Parse(revoked.CRLDistributionPoints[0])
	u.Host = fmt.Sprintf("127.0.0.1:%d", a.CRLPort)
	deadline = time.Now().Add(10 * time.Second)
	for {
		rl, err := x509.ParseRevocationList(fetchCRL(t, u.String()))
		if err != nil {
			t.Fatal(err)
		}
		if rl.CheckSignatureFrom(oldIssuer) == nil && crlLists(rl, revoked.SerialNumber) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old intermediate's CRL on the replica does not list the revoked certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, _, code := runCLI(t, nil, "admin", "eab", "list", "--db", dsn); code != 0 || !strings.Contains(out, kid) {
		t.Errorf("the EAB key %s is not listed after the move:\n%s", kid, out)
	}

	// The console user signs in on a replica and asks the agent's
	// certificate to renew now (ARI, RFC 9773).
	console := consoleClient(a)
	if code, body := formLogin(t, a, console, "alice", "alice's long passphrase"); code != http.StatusSeeOther {
		t.Fatalf("alice's sign-in after the move: %d\n%s", code, body)
	}
	id := findCertID(t, a, console, "agent.migrate.test")
	if status, _, body := consolePost(t, a, console, "/certificates/"+id+"/renew", nil); status != http.StatusSeeOther {
		t.Fatalf("renew now: %d\n%s", status, body)
	}

	// The agent, unchanged, renews through the load balancer with the
	// account it registered before the move.
	counts := proxy.Counts()
	stdout, errOut, code = runCLI(t, nil, agentArgs...)
	if code != 0 || !strings.HasPrefix(stdout, "renewed ") {
		t.Fatalf("agent --once after the move: exit %d: %s%s\nreplica A:\n%s\nreplica B:\n%s", code, stdout, errOut, a.Output(), b.Output())
	}
	if again, _ := os.ReadFile(filepath.Join(agentOut, "account.json")); string(again) != string(account) {
		t.Error("the agent registered a new account after the move")
	}
	renewed := readLeaf(t, filepath.Join(agentOut, "cert.pem"))
	final := storedCerts(t, a)
	if final[serialOf(renewed)].account != before[serialOf(agentLeaf)].account || final[serialOf(agentLeaf)].replacedBy == "" {
		t.Errorf("the renewal is not the agent's account's replacement: %+v, old %+v", final[serialOf(renewed)], final[serialOf(agentLeaf)])
	}
	if err := renewed.CheckSignatureFrom(newIssuer); err != nil {
		t.Errorf("the renewed certificate is not signed by the rotated intermediate: %v", err)
	}
	// Both replicas serve: one more client, a new connection per request.
	client := legoThrough(t, front)
	if _, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"after.migrate.test"}, Bundle: true}); err != nil {
		t.Fatalf("obtain through the replicas: %v", err)
	}
	now := proxy.Counts()
	for i := range now {
		if now[i] <= counts[i] {
			t.Errorf("replica %c served no connection after the move (%v → %v)", 'A'+i, counts, now)
		}
	}
}

// startOnDB starts one more `certmint serve` on db with an empty data
// directory: the CA comes from the database. It answers validation where
// like did (a client behind the load balancer cannot know the replica).
func startOnDB(t *testing.T, like *Server, db string) *Server {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	s := &Server{t: t, Data: data, opts: ServerOptions{DB: db, Data: data, Env: passEnv},
		HTTPPort: like.HTTPPort, TLSPort: like.TLSPort, DNS: like.DNS, RootPEM: like.RootPEM, Roots: like.Roots}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// legoThrough registers a lego client at front that opens a new
// connection for every request.
func legoThrough(t *testing.T, front *Server) *lego.Client {
	t.Helper()
	user := &legoUser{key: newAccountKey(t, "ec")}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = front.DirectoryURL()
	cfg.HTTPClient = noKeepAlive(front)
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(front.HTTPPort))); err != nil {
		t.Fatal(err)
	}
	if user.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		t.Fatal(err)
	}
	return client
}

func readLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseLeaf(t, b)
}
