package integration

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to tamper with Postgres
)

// TestAuditTamper is issue 23's audit demonstration, on the real binary:
// audit entries are written, the server seals them, and `certmint audit
// verify` passes on the untouched log and names the entry when one is
// edited, deleted or inserted directly in the database (each undone
// before the next). On SQLite, the console's Audit page in Chromium says
// the chain verifies, and after an edit that it is broken.
func TestAuditTamper(t *testing.T) {
	for name, dsnFor := range engines(t) {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t)
			// A short settle window so the test need not wait two minutes;
			// serve insists that it stays above the statement timeout.
			s := StartServer(t, ServerOptions{DB: dsn, Args: []string{
				"--audit-seal-every", "1s", "--audit-seal-settle", "3s", "--db-statement-timeout", "1s"}})
			for i := range 3 {
				obtainWithLegoClient(t, s, fmt.Sprintf("audit%d.tamper.test", i))
			}
			var b *browser
			if name == "sqlite" {
				b = &browser{t: t, ctx: newBrowser(t), base: s.AdminURL(), shots: screenshotDir(t)}
				pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
				if err != nil {
					t.Fatal(err)
				}
				b.login("admin", strings.TrimSpace(string(pw)))
			}
			tm := &tamperer{t: t, s: s, dsn: dsn}
			start := time.Now()
			tm.waitSealed(20 * time.Second)
			t.Logf("all entries sealed %s after the last one was written", time.Since(start).Round(100*time.Millisecond))
			ids := tm.ids()
			if len(ids) < 3 {
				t.Fatalf("only %d audit entries", len(ids))
			}
			victim := ids[len(ids)/2]

			tm.exec("UPDATE audit_events SET detail = 'nothing to see' WHERE id = ?", victim)
			tm.wantBroken(victim, "changed")
			tm.exec("UPDATE audit_events SET detail = (SELECT detail FROM audit_keep WHERE id = ?) WHERE id = ?", victim, victim)
			tm.wantIntact()

			tm.exec("DELETE FROM audit_events WHERE id = ?", victim)
			tm.wantBroken(victim, "deleted")
			tm.exec("INSERT INTO audit_events SELECT * FROM audit_keep WHERE id = ?", victim)
			tm.wantIntact()

			forged := victim + "0" // sorts right after victim, inside the sealed range
			tm.exec("INSERT INTO audit_events (id, at, actor, action, target, detail, remote_addr) "+
				"SELECT ?, at, actor, 'certificate.revoke', target, 'forged', remote_addr FROM audit_events WHERE id = ?", forged, victim)
			tm.wantBroken(forged, "inserted")
			tm.exec("DELETE FROM audit_events WHERE id = ?", forged)
			tm.wantIntact()

			if b == nil {
				return
			}
			b.open("/audit")
			if got := b.text("#audit-verify"); !strings.Contains(got, "chain verifies") {
				t.Fatalf("the Audit page on the intact log says %q, want chain verifies", got)
			}
			if got := b.text("#audit-seal"); !strings.Contains(got, "Last seal #") {
				t.Errorf("the Audit page shows no last seal: %q", got)
			}
			b.shot("audit-intact")
			// The page caches its check for a minute; a restarted server
			// checks afresh.
			tm.exec("UPDATE audit_events SET actor = 'mallory' WHERE id = ?", victim)
			s.Stop()
			s.Start()
			b.open("/audit")
			got := b.text("#audit-verify")
			if !strings.Contains(got, "chain broken") || !strings.Contains(got, victim) {
				t.Fatalf("the Audit page after an edit says %q, want chain broken naming %s", got, victim)
			}
			b.shot("audit-broken")
		})
	}
}

// TestAuditSealKeyed: with CERTMINT_CA_PASSPHRASE the seals carry an
// HMAC; verify checks it with the passphrase, says it did not without,
// and fails with a wrong one (which is what a rewrite without the key
// looks like).
func TestAuditSealKeyed(t *testing.T) {
	const pass = "audit seal test passphrase"
	env := []string{"CERTMINT_CA_PASSPHRASE=" + pass}
	s := StartServer(t, ServerOptions{Env: env, Args: []string{
		"--audit-seal-every", "1s", "--audit-seal-settle", "3s", "--db-statement-timeout", "1s"}})
	obtainWithLegoClient(t, s, "keyed.tamper.test")
	tm := &tamperer{t: t, s: s, env: env}
	tm.waitSealed(30 * time.Second)
	for _, tc := range []struct {
		env  []string
		code int
		want string
	}{
		{env, 0, "MACs checked"},
		{nil, 0, "MACs not checked"},
		{[]string{"CERTMINT_CA_PASSPHRASE=not the passphrase"}, 1, "MAC does not verify"},
	} {
		tm.env = tc.env
		if out, code := tm.verify(); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("verify with %v: exit %d, want %d with %q:\n%s", tc.env, code, tc.code, tc.want, out)
		}
	}
}

// tamperer edits the server's database behind its back and runs
// `certmint audit verify` on it.
type tamperer struct {
	t   *testing.T
	s   *Server
	dsn string   // "" for the SQLite file in s.Data
	env []string // of audit verify
	db  *sql.DB
}

func (tm *tamperer) open() *sql.DB {
	if tm.db != nil {
		return tm.db
	}
	var err error
	if tm.dsn == "" {
		tm.db, err = sql.Open("sqlite", "file:"+filepath.Join(tm.s.Data, "certmint.db")+"?_pragma=busy_timeout(5000)")
	} else {
		tm.db, err = sql.Open("pgx", tm.dsn)
	}
	if err != nil {
		tm.t.Fatal(err)
	}
	tm.t.Cleanup(func() { tm.db.Close() })
	// A copy of the log as sealed, to undo each change with plain SQL.
	if _, err := tm.db.Exec("CREATE TABLE audit_keep AS SELECT * FROM audit_events"); err != nil {
		tm.t.Fatal(err)
	}
	return tm.db
}

// exec runs one statement with ? placeholders on either engine.
func (tm *tamperer) exec(query string, args ...any) {
	tm.t.Helper()
	if tm.dsn != "" {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	res, err := tm.open().Exec(query, args...)
	if err != nil {
		tm.t.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tm.t.Fatalf("%s changed %d rows, want 1", query, n)
	}
}

// ids are the audit entries' IDs in order.
func (tm *tamperer) ids() []string {
	rows, err := tm.open().Query("SELECT id FROM audit_keep ORDER BY id")
	if err != nil {
		tm.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tm.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func (tm *tamperer) verify() (string, int) {
	args := []string{"audit", "verify", "--data", tm.s.Data}
	if tm.dsn != "" {
		args = append(args, "--db", tm.dsn)
	}
	out, errOut, code := runCLI(tm.t, tm.env, args...)
	return out + errOut, code
}

// waitSealed runs verify until every entry is sealed (and the chain is
// intact), which also checks the untouched log.
func (tm *tamperer) waitSealed(limit time.Duration) {
	tm.t.Helper()
	var out string
	var code int
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		out, code = tm.verify()
		if code == 0 && strings.Contains(out, "not yet sealed: 0 ") && !strings.Contains(out, "no seal yet") {
			tm.t.Logf("untouched log:\n%s", out)
			return
		}
		if code != 0 {
			break
		}
	}
	tm.t.Fatalf("the log was not sealed within %s (exit %d):\n%s\n%s", limit, code, out, tm.s.Output())
}

func (tm *tamperer) wantIntact() {
	tm.t.Helper()
	if out, code := tm.verify(); code != 0 || !strings.Contains(out, "audit chain intact") {
		tm.t.Fatalf("verify after undoing the change: exit %d, want 0:\n%s", code, out)
	}
}

func (tm *tamperer) wantBroken(id, kind string) {
	tm.t.Helper()
	out, code := tm.verify()
	want := "entry " + id + " was " + kind
	if code != 1 || !strings.Contains(out, want) {
		tm.t.Fatalf("verify after the entry was %s: exit %d, want 1 with %q:\n%s", kind, code, want, out)
	}
	tm.t.Logf("%s entry found: %s", kind, firstLine(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
