package integration

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read a Postgres server's DB
	"golang.org/x/crypto/acme"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/tools/pgtest"
)

// testPassphrase encrypts the CA keys of the servers these tests back up:
// a backup of unencrypted keys is refused without --allow-unencrypted-keys.
const testPassphrase = "correct horse battery staple"

var passEnv = []string{"CERTMINT_CA_PASSPHRASE=" + testPassphrase}

// dbArgs names s's database for a command: --db for Postgres, else --data.
func dbArgs(s *Server) []string {
	if s.opts.DB != "" {
		return []string{"--db", s.opts.DB}
	}
	return []string{"--data", s.Data}
}

// moveServer starts a stopped server again on another data directory and
// database, on the same ports: the same service, as clients know it,
// running on what a restore made.
func moveServer(s *Server, data, db string) {
	s.Data, s.opts.Data, s.opts.DB = data, data, db
	s.Start()
}

// openSQL opens s's database (the SQLite file, read-only, or Postgres).
func openSQL(t testing.TB, s *Server) *sql.DB {
	t.Helper()
	if s.opts.DB == "" {
		return openDB(t, s)
	}
	db, err := sql.Open("pgx", s.opts.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storedCert is what the tests check of a stored certificate.
type storedCert struct {
	revoked    bool
	replacedBy string
	account    string
}

// storedCerts maps each stored certificate's serial (lowercase hex) to
// its state.
func storedCerts(t testing.TB, s *Server) map[string]storedCert {
	t.Helper()
	rows, err := openSQL(t, s).Query("SELECT serial, revoked, replaced_by, account_id FROM certificates")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedCert{}
	for rows.Next() {
		var serial string
		var c storedCert
		var replacedBy sql.NullString
		if err := rows.Scan(&serial, &c.revoked, &replacedBy, &c.account); err != nil {
			t.Fatal(err)
		}
		c.replacedBy = replacedBy.String
		out[serial] = c
	}
	return out
}

// serialOf is a certificate's serial as the database keeps it.
func serialOf(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// checkSnapshotConsistent fails if the restored database holds half of
// an issuance: a certificate without its order, or a valid order without
// its certificate. Both are written in one transaction, so a consistent
// snapshot has neither, however busy the server was.
func checkSnapshotConsistent(t *testing.T, s *Server) {
	t.Helper()
	db := openSQL(t, s)
	for what, q := range map[string]string{
		"certificates without their order":       "SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = c.order_id AND o.certificate_id = c.id)",
		"valid orders without their certificate": "SELECT COUNT(*) FROM orders o WHERE o.status = 'valid' AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.id = o.certificate_id)",
	} {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the restored database has %d %s", n, what)
		}
	}
}

// waitSealed waits until the audit sealer of s has sealed some entries.
func waitSealed(t *testing.T, s *Server) {
	t.Helper()
	db := openSQL(t, s)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM audit_seals").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit seal within 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dropDatabase removes a Postgres database, as a lost server would.
func dropDatabase(t *testing.T, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	conn := pgConnect(t, u.String())
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), fmt.Sprintf("DROP DATABASE %q WITH (FORCE)", name)); err != nil {
		t.Fatalf("drop database %s: %v", name, err)
	}
}

// crlOf fetches the CRL at leaf's distribution point and parses it.
func crlOf(t *testing.T, leaf *x509.Certificate) *x509.RevocationList {
	t.Helper()
	rl, err := x509.ParseRevocationList(fetchCRL(t, leaf.CRLDistributionPoints[0]))
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// waitCRL polls leaf's CRL until cond holds, for at most 10 seconds.
func waitCRL(t *testing.T, leaf *x509.Certificate, what string, cond func(*x509.RevocationList) bool) *x509.RevocationList {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rl := crlOf(t, leaf)
		if cond(rl) {
			return rl
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL number %s: %s did not happen within 10s", rl.Number, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// received is a certificate a client got, and when.
type received struct {
	serial string
	at     time.Time
	ders   [][]byte
	client *acme.Client
}

// issuanceLoad keeps two ACME clients ordering certificates until stop,
// at most for limit and at most one order per client every 50 ms: a
// bounded load.
type issuanceLoad struct {
	mu   sync.Mutex
	got  []received
	fail int
	stop context.CancelFunc
	wg   sync.WaitGroup
	http func()
}

func startIssuance(t *testing.T, s *Server, limit time.Duration) *issuanceLoad {
	t.Helper()
	var keyAuths sync.Map
	l := &issuanceLoad{}
	l.http = serveHTTP01(t, s, func(token string) string {
		v, _ := keyAuths.Load(token)
		ka, _ := v.(string)
		return ka
	})
	ctx, stop := context.WithTimeout(context.Background(), limit)
	l.stop = stop
	for w := range 2 {
		c := newXClient(t, s)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				ders, err := orderCert(ctx, c, &keyAuths, fmt.Sprintf("w%d-%d.load.backup.test", w, n))
				l.mu.Lock()
				if err == nil {
					leaf, _ := x509.ParseCertificate(ders[0])
					l.got = append(l.got, received{serial: serialOf(leaf), at: time.Now(), ders: ders, client: c})
				} else if ctx.Err() == nil {
					l.fail++
				}
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	return l
}

// waitFor waits until n certificates were received after since.
func (l *issuanceLoad) waitFor(t *testing.T, n int, since time.Time) []received {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var after []received
		l.mu.Lock()
		for _, r := range l.got {
			if r.at.After(since) {
				after = append(after, r)
			}
		}
		l.mu.Unlock()
		if len(after) >= n {
			return after
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load got %d certificates after %s, want %d", len(after), since.Format(time.StampMilli), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *issuanceLoad) end() []received {
	l.stop()
	l.wg.Wait()
	l.http()
	return l.got
}

// TestBackupRestoreUnderLoad: `certmint backup` runs while clients are
// being issued certificates; the server and its database are then lost,
// `restore` rebuilds them, and the server started on the restore has
// every certificate clients received before the backup began, with its
// status; the revocation is on the CRL, whose number is above any
// published before; a nonce handed out before is refused; and lego
// renews a certificate with ARI "replaces" (RFC 9773 §5).
func TestBackupRestoreUnderLoad(t *testing.T) {
	for name, dsnOf := range engines(t) {
		t.Run(name, func(t *testing.T) { testBackupRestoreUnderLoad(t, dsnOf(t)) })
	}
}

func testBackupRestoreUnderLoad(t *testing.T, dsn string) {
	// The audit sealer runs fast, so the backup carries sealed entries
	// (audit_seals, a table this code never names).
	s := StartServer(t, ServerOptions{DB: dsn, Env: passEnv, Args: []string{"--rate-limits=false",
		"--audit-seal-every", "1s", "--audit-seal-settle", "6s", "--db-statement-timeout", "2s"}})
	lego, _ := newLegoClient(t, s, "ec")
	var chains [][]byte
	for _, name := range []string{"revoked.backup.test", "renewed.backup.test"} {
		res, err := lego.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
		if err != nil {
			t.Fatalf("obtain %s: %v\n%s", name, err, s.Output())
		}
		chains = append(chains, res.Certificate)
	}
	revoked, renewed := parseLeaf(t, chains[0]), parseLeaf(t, chains[1])
	reason := uint(1) // keyCompromise
	if err := lego.Certificate.RevokeWithReason(chains[0], &reason); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	waitCRL(t, revoked, "list the revoked certificate", func(rl *x509.RevocationList) bool { return crlLists(rl, revoked.SerialNumber) })
	oldNonce := fetchNonce(t, s.HTTPClient(), s)

	load := startIssuance(t, s, 40*time.Second)
	load.waitFor(t, 4, time.Time{})
	waitSealed(t, s)
	file := filepath.Join(t.TempDir(), "certmint.backup")
	backupStart := time.Now()
	out, errOut, code := runCLI(t, nil, append([]string{"backup", "--out", file}, dbArgs(s)...)...)
	if code != 0 {
		t.Fatalf("backup under load: exit %d: %s\n%s", code, errOut, s.Output())
	}
	backupDone := time.Now()
	t.Logf("backup under load in %s: %s", backupDone.Sub(backupStart).Round(time.Millisecond), strings.TrimSpace(out))
	// After the backup: more certificates, and a revocation that moves
	// the CRL number on; the restore must not number a CRL below it.
	later := load.waitFor(t, 2, backupDone)
	lateLeaf, _ := x509.ParseCertificate(later[0].ders[0])
	if err := later[0].client.RevokeCert(context.Background(), nil, later[0].ders[0], acme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("revoke after the backup: %v", err)
	}
	lastCRL := waitCRL(t, revoked, "list the certificate revoked after the backup", func(rl *x509.RevocationList) bool { return crlLists(rl, lateLeaf.SerialNumber) })
	got := load.end()
	s.Stop()
	t.Logf("load: %d certificates received, %d failed flows; CRL number %s before the loss", len(got), load.fail, lastCRL.Number)

	// The loss, and the restore into a fresh data directory or database.
	var data, db string
	if dsn == "" {
		if err := os.RemoveAll(s.Data); err != nil {
			t.Fatal(err)
		}
		data = filepath.Join(t.TempDir(), "restored")
	} else {
		dropDatabase(t, dsn)
		data, db = filepath.Join(t.TempDir(), "data"), pgtest.Start(t)
	}
	target := []string{"--data", data}
	if db != "" {
		target = []string{"--db", db}
	}
	out, errOut, code = runCLI(t, passEnv, append([]string{"restore", "--in", file}, target...)...)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	t.Logf("restore: %s", strings.TrimSpace(out))
	moveServer(s, data, db)

	stored := storedCerts(t, s)
	before := 0
	for _, r := range got {
		if !r.at.Before(backupStart) {
			continue
		}
		before++
		if c, ok := stored[r.serial]; !ok {
			t.Errorf("certificate %s received before the backup is not in the restored database", r.serial)
		} else if c.revoked {
			t.Errorf("certificate %s is revoked after the restore, it was not", r.serial)
		}
	}
	for _, leaf := range []*x509.Certificate{revoked, renewed} {
		if c, ok := stored[serialOf(leaf)]; !ok || c.revoked != (leaf == revoked) {
			t.Errorf("certificate %s: stored %v, revoked %v after the restore; want stored, revoked %v", serialOf(leaf), ok, c.revoked, leaf == revoked)
		}
	}
	if before < 4 {
		t.Fatalf("only %d load certificates were received before the backup", before)
	}
	during := 0
	for _, r := range got {
		if r.at.After(backupStart) && r.at.Before(backupDone) {
			during++
		}
	}
	t.Logf("%d load certificates received before the backup, all restored; %d while it ran", before, during)
	checkSnapshotConsistent(t, s)

	rl := waitCRL(t, revoked, "be signed after the restore", func(*x509.RevocationList) bool { return true })
	if !crlLists(rl, revoked.SerialNumber) {
		t.Error("the CRL after the restore does not list the certificate revoked before the backup")
	}
	if rl.Number.Cmp(lastCRL.Number) <= 0 {
		t.Errorf("CRL number %s after the restore, want above %s, the last published before (RFC 5280 §5.2.3)", rl.Number, lastCRL.Number)
	}
	if err := rl.CheckSignatureFrom(chainIssuer(t, chains[0])); err != nil {
		t.Errorf("CRL after the restore: %v", err)
	}

	// The audit chain the backup carried still verifies, MACs included.
	if out, errOut, code := runCLI(t, passEnv, append([]string{"audit", "verify"}, dbArgs(s)...)...); code != 0 || !strings.Contains(out, "audit chain intact") || strings.Contains(out, "no seal yet") {
		t.Errorf("audit verify after the restore: exit %d\n%s%s", code, out, errOut)
	}

	// A nonce from before the restore is void (RFC 8555 §6.5).
	key := newAccountKey(t, "ec")
	u := s.DirectoryURL()[:strings.LastIndex(s.DirectoryURL(), "/")] + "/new-account"
	msg, err := jws.Sign(key, jws.AlgFor(key.Public()), jws.Header{Nonce: oldNonce, URL: u}, []byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _, _ := postJOSE(t, s.HTTPClient(), u, msg); code != http.StatusBadRequest || body["type"] != "urn:ietf:params:acme:error:badNonce" {
		t.Errorf("a nonce from before the restore: %d %v, want 400 badNonce", code, body)
	}

	// lego, same account, renews with "replaces" (RFC 9773 §5).
	ariID, err := certificate.MakeARICertID(renewed)
	if err != nil {
		t.Fatal(err)
	}
	res, err := lego.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"renewed.backup.test"}, Bundle: true, ReplacesCertID: ariID})
	if err != nil {
		t.Fatalf("renew with replaces after the restore: %v\n%s", err, s.Output())
	}
	after := storedCerts(t, s)
	if after[serialOf(renewed)].replacedBy == "" || parseLeaf(t, res.Certificate).SerialNumber.Cmp(renewed.SerialNumber) == 0 {
		t.Errorf("the renewal did not replace the restored certificate (replaced_by %q)", after[serialOf(renewed)].replacedBy)
	}
}
