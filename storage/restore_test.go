package storage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/driver/sqlite"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/crl"
	"github.com/certmint/certmint/internal/audit"
)

// TestRestoreVoidsLiveState: after a restore no CRL number can repeat, no
// nonce or console session from before works, no lease of the old
// deployment blocks the new one, and the webhook outbox keeps only what
// was not delivered, released for the next dispatcher.
func TestRestoreVoidsLiveState(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	s := mustOpen(t, src)
	c := ctx(t)
	inter := ca.IssuerRecord{ID: "1a2b", Role: ca.RoleIntermediate, State: ca.StateActive, CreatedAt: base}
	noErr(t, "issuers", s.ChangeIssuers(c, []ca.IssuerRecord{inter}, nil, nil))
	for range 3 {
		_, err := s.NextCRLNumber(c, inter.ID)
		noErr(t, "crl number", err)
	}
	_, err := s.SaveCRL(c, &crl.CRL{Issuer: inter.ID, Number: 3, ThisUpdate: base, NextUpdate: base.Add(time.Hour), State: "x", DER: []byte{1}})
	noErr(t, "save crl", err)
	oldKey, err := s.InitSetting(c, acme.NonceKeySetting, "00112233445566778899aabbccddeeff")
	noErr(t, "nonce key", err)
	noErr(t, "use nonce", s.UseNonce(c, "spent", time.Now().Add(time.Hour)))
	noErr(t, "session", s.CreateSession(c, &Session{TokenHash: "tok", Username: "admin", CSRFToken: "csrf", CreatedAt: base, ExpiresAt: time.Now().Add(time.Hour)}))
	ok, err := s.AcquireLease(c, "sweeper", "old-host/1", time.Now(), time.Hour)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	_, err = s.AddWebhook(c, "https://hooks.example/in", "secret", "", audit.Event{Actor: "admin"})
	noErr(t, "webhook", err)
	for _, key := range []string{"a", "b"} {
		_, err := s.EmitOnce(c, key, time.Hour, "test.event", map[string]string{"k": key}, time.Now())
		noErr(t, "emit", err)
	}
	claimed, err := s.ClaimDeliveries(c, "old-host/1", time.Now(), time.Hour, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	noErr(t, "deliver", s.FinishDelivery(c, claimed[0].ID, "old-host/1", 200, "", time.Now(), time.Time{}))

	data, _ := backupOf(t, src)
	dst := filepath.Join(t.TempDir(), "certmint.db")
	before := time.Now()
	res, err := restoreFrom(t, dst, data, RestoreOptions{})
	noErr(t, "restore", err)
	if res.CRLNumberFloor < before.UnixMilli() {
		t.Errorf("CRL number floor %d is below the restore time %d", res.CRLNumberFloor, before.UnixMilli())
	}
	r := mustOpen(t, dst)
	if n, err := r.NextCRLNumber(c, inter.ID); err != nil || n <= res.CRLNumberFloor {
		t.Errorf("next CRL number %d (%v), want above the floor %d", n, err, res.CRLNumberFloor)
	}
	if got, err := r.GetCRL(c, inter.ID, 0); err != nil || got != nil {
		t.Errorf("the backup's CRL is still served: %v %v", got, err)
	}
	if key, err := r.GetSetting(c, acme.NonceKeySetting); err != nil || key == oldKey || len(key) != 64 {
		t.Errorf("nonce key after restore %q (%v), want a new one", key, err)
	}
	if err := r.UseNonce(c, "spent", time.Now().Add(time.Hour)); err != nil {
		t.Errorf("the spent-nonce table was not emptied: %v", err)
	}
	if _, err := r.GetSession(c, "tok", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("a console session survived the restore: %v", err)
	}
	if ok, err := r.AcquireLease(c, "sweeper", "new-host/1", time.Now(), time.Minute); err != nil || !ok {
		t.Errorf("the old deployment's lease still holds: %v %v", ok, err)
	}
	due, err := r.ClaimDeliveries(c, "new-host/1", time.Now(), time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].ID != claimed[1].ID {
		t.Errorf("outbox after restore: %d due (%v), want only the undelivered %s", len(due), err, claimed[1].ID)
	}
	var n int64
	noErr(t, "count", gormOf(r).db.Table("webhook_deliveries").Count(&n).Error)
	if n != 1 {
		t.Errorf("%d deliveries kept, want 1 (the delivered one dropped)", n)
	}
}

// TestRestoreRefusals: every bad input is its own error, and the target
// is left exactly as it was: a SQLite directory with no new file, a
// Postgres database with no table.
func TestRestoreRefusals(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	s := mustOpen(t, src)
	newAccount(t, s)
	good, _ := backupOf(t, src)

	// A backup from a newer certmint: its schema has a migration unknown here.
	noErr(t, "future migration", gormOf(s).db.Exec("INSERT INTO migrations (id) VALUES ('9999_future')").Error)
	newer, _ := backupOf(t, src)

	var foreign bytes.Buffer
	w := newBackupWriter(&foreign)
	noErr(t, "header", w.header(BackupHeader{Format: backupFormat, Version: backupVersion, Engine: "mysql", Schema: "0001_core", Migrations: []string{"0001_core"}}))
	noErr(t, "finish", w.finish(&Manifest{BackupHeader: BackupHeader{Format: backupFormat, Version: backupVersion, Engine: "mysql", Schema: "0001_core", Migrations: []string{"0001_core"}}}))

	edited := editRow(t, good, "@example.com", "@example.org")
	errCheck := errors.New("wrong passphrase")
	cases := []struct {
		name string
		data []byte
		o    RestoreOptions
		want error
	}{
		{"truncated", good[:len(good)*2/3], RestoreOptions{}, ErrBackupDamaged},
		{"cut-before-manifest", recompress(t, good, func(s string) string { return s[:strings.LastIndex(s[:len(s)-1], "\n")+1] }), RestoreOptions{}, ErrBackupDamaged},
		{"edited", edited, RestoreOptions{}, ErrBackupDamaged},
		{"garbage", []byte("not a backup"), RestoreOptions{}, ErrBackupDamaged},
		{"newer-schema", newer, RestoreOptions{}, ErrBackupNewer},
		{"foreign-engine", foreign.Bytes(), RestoreOptions{}, ErrBackupUnmappable},
		{"issuers-refused", good, RestoreOptions{CheckIssuers: func([]ca.IssuerRecord) error { return errCheck }}, errCheck},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, tc := range cases {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				dst := engineDSNs[engine](t)
				_, err := restoreFrom(t, dst, tc.data, tc.o)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				t.Logf("%v", err)
				assertEmptyTarget(t, engine, dst)
			})
		}
		t.Run(engine+"/not-empty", func(t *testing.T) {
			dst := engineDSNs[engine](t)
			held := mustOpen(t, dst)
			a := newAccount(t, held)
			if engine == "sqlite" {
				held.Close() // the restore runs with no server on the file
			}
			_, err := restoreFrom(t, dst, good, RestoreOptions{})
			if !errors.Is(err, ErrTargetNotEmpty) {
				t.Fatalf("err = %v, want ErrTargetNotEmpty", err)
			}
			again := mustOpen(t, dst)
			if _, err := again.GetAccount(ctx(t), a.ID); err != nil {
				t.Fatalf("the target's own account is gone: %v", err)
			}
			if engine == "sqlite" {
				if extra := filesExcept(t, filepath.Dir(dst), "certmint.db", "certmint.db-wal", "certmint.db-shm"); len(extra) > 0 {
					t.Errorf("restore left files behind: %v", extra)
				}
			}
		})
	}
}

// assertEmptyTarget checks a failed restore wrote nothing.
func assertEmptyTarget(t *testing.T, engine, dsn string) {
	t.Helper()
	if engine == "sqlite" {
		if extra := filesExcept(t, filepath.Dir(dsn)); len(extra) > 0 {
			t.Errorf("the target directory holds %v after a failed restore", extra)
		}
		return
	}
	db, err := openPostgres(ctx(t), dsn, Options{}.withDefaults())
	noErr(t, "open", err)
	defer closeGorm(db)
	tables, err := listTables(db, enginePostgres)
	noErr(t, "tables", err)
	if len(tables) > 0 {
		t.Errorf("the target database holds tables %v after a failed restore", tables)
	}
}

func filesExcept(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	noErr(t, "read dir", err)
	var out []string
	for _, e := range ents {
		if !slices.Contains(keep, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// recompress rewrites a backup's uncompressed text with edit.
func recompress(t *testing.T, data []byte, edit func(string) string) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	noErr(t, "gunzip", err)
	plain, err := io.ReadAll(gz)
	noErr(t, "gunzip", err)
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write([]byte(edit(string(plain))))
	w.Close()
	return out.Bytes()
}

// editRow changes one row's text as someone with zcat, an editor and
// gzip would: the file is a valid gzip stream, only the content differs.
func editRow(t *testing.T, data []byte, old, repl string) []byte {
	t.Helper()
	return recompress(t, data, func(s string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("backup does not contain %q", old)
		}
		return strings.Replace(s, old, repl, 1)
	})
}

// TestRestoreOlderSchema: a backup made before a migration restores with
// its own schema first; the newer migrations then upgrade its rows, as
// they would upgrade the old database in place (here 0013 builds the
// lineage of a certificate issued before lineages existed).
func TestRestoreOlderSchema(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	db, err := openGorm(&sqlite.Dialector{DriverName: sqliteDriverName, DSN: sqliteDSN(src, false)}, Options{}.withDefaults())
	noErr(t, "open", err)
	var old []*gormigrate.Migration
	for _, m := range migrations() {
		if m.ID <= "0012_ca_issuers" {
			old = append(old, m)
		}
	}
	noErr(t, "migrate to 0012", gormigrate.New(db, gormigrate.DefaultOptions, old).Migrate())
	noErr(t, "certificate", db.Exec(`INSERT INTO certificates (id, serial, account_id, order_id, names, not_before, not_after, der, chain_pem, revoked, renew_now, created_at, issuer_id)
		VALUES ('c1', '0a', 'acct', 'o1', 'old.example', ?, ?, ?, '', false, false, ?, '')`, base, base.Add(90*24*time.Hour), []byte{0x30}, base).Error)
	closeGorm(db)

	data, m := backupOf(t, src)
	if m.Schema != "0012_ca_issuers" {
		t.Fatalf("backup schema %s", m.Schema)
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dst := engineDSNs[engine](t)
			_, err := restoreFrom(t, dst, data, RestoreOptions{})
			noErr(t, "restore", err)
			r := mustOpen(t, dst)
			var ids []string
			noErr(t, "migrations", gormOf(r).db.Table("migrations").Pluck("id", &ids).Error)
			if len(ids) != len(migrations()) {
				t.Errorf("%d migrations recorded, want %d", len(ids), len(migrations()))
			}
			var lineages int64
			noErr(t, "lineages", gormOf(r).db.Table("lineages").Where("certificate_id = 'c1'").Count(&lineages).Error)
			if lineages != 1 {
				t.Errorf("the old certificate has %d lineages after the upgrade, want 1", lineages)
			}
		})
	}
}

// TestRestoreSQLiteStaleWAL: a WAL left beside a database that is gone
// (the server was killed, then only certmint.db deleted) belongs to that
// database; SQLite would replay it into the restored file at the next
// open. The restore removes it, as it does for an empty database's.
func TestRestoreSQLiteStaleWAL(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	a := newAccount(t, mustOpen(t, src))
	good, _ := backupOf(t, src)

	dst := filepath.Join(t.TempDir(), "certmint.db")
	old, err := Open(ctx(t), dst, Options{})
	noErr(t, "open the old database", err)
	newAccount(t, old)
	wal, err := os.ReadFile(dst + "-wal") // what a kill -9 leaves: the WAL, not checkpointed
	noErr(t, "read the WAL", err)
	old.Close()
	for _, f := range []string{dst, dst + "-shm"} {
		os.Remove(f)
	}
	noErr(t, "leave the WAL", os.WriteFile(dst+"-wal", wal, 0o600))

	_, err = restoreFrom(t, dst, good, RestoreOptions{})
	noErr(t, "restore", err)
	r := mustOpen(t, dst)
	if _, err := r.GetAccount(ctx(t), a.ID); err != nil {
		t.Fatalf("the restored account: %v", err)
	}
	var check string
	noErr(t, "integrity check", gormOf(r).db.Raw("PRAGMA integrity_check").Scan(&check).Error)
	if check != "ok" {
		t.Fatalf("integrity_check: %s", check)
	}
}
