package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/ca"
)

// A restore loads a backup into an empty database, of either engine, all
// or nothing:
//
//   - Postgres: one transaction holds everything, from the migrations
//     that create the schema to the last row, so a failure anywhere
//     leaves the database as it was (empty). It holds the migration lock,
//     so a server started meanwhile waits and then finds the data.
//   - SQLite: the database is built in a temporary file beside the target
//     and renamed over it at the end, so the target path holds nothing or
//     the whole restore, never part of one.
//
// The schema is made the normal way: the migrations the backup had run
// first, then its rows go in table by table in the backup's order
// (parents before children), then any newer migrations this binary has,
// which upgrade the restored rows as they would an old database.

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// CheckIssuers vets the backup's CA issuers before anything is
	// written: the command line checks there that the passphrase opens
	// the keys. Its error is returned as is.
	CheckIssuers func([]ca.IssuerRecord) error
	// Progress, when set, hears of each table every progressEvery rows
	// and once at its end.
	Progress func(table string, rows int64, done bool)
	Now      func() time.Time
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Manifest *Manifest
	// CRLNumberFloor is the lowest CRL number any issuer can use next.
	CRLNumberFloor int64
}

// Restore loads the backup read from in into the empty database named by
// dsn (a SQLite file path, or a postgres:// URL). Bad input is one of
// ErrBackupDamaged, ErrBackupNewer, ErrBackupUnmappable or
// ErrTargetNotEmpty, or CheckIssuers' error; in every failure the target
// is left as it was.
func Restore(ctx context.Context, dsn string, in io.Reader, o RestoreOptions) (*RestoreResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	br, err := openBackupReader(in)
	if err != nil {
		return nil, err
	}
	h := br.header
	if h.Engine != engineSQLite && h.Engine != enginePostgres {
		return nil, fmt.Errorf("%w: it was made from a %q database; this certmint maps sqlite and postgres", ErrBackupUnmappable, h.Engine)
	}
	if unknown := UnknownMigrations(h.Migrations); len(unknown) > 0 {
		return nil, fmt.Errorf("%w: its schema includes migration %s, which this certmint does not know; restore it with certmint %s or newer",
			ErrBackupNewer, unknown[0], h.Certmint)
	}
	if isPostgresDSN(dsn) {
		res, err := restorePostgres(ctx, dsn, br, o)
		if err != nil {
			return nil, scrubPassword(err, dsn)
		}
		return res, nil
	}
	return restoreSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), br, o)
}

// UnknownMigrations returns the IDs in ids that this binary does not have:
// a backup holding any is from a newer schema.
func UnknownMigrations(ids []string) []string {
	known := map[string]bool{}
	for _, m := range migrations() {
		known[m.ID] = true
	}
	var out []string
	for _, id := range ids {
		if !known[id] {
			out = append(out, id)
		}
	}
	return out
}

func restorePostgres(ctx context.Context, dsn string, br *backupReader, o RestoreOptions) (*RestoreResult, error) {
	db, err := openPostgres(ctx, dsn, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	defer closeGorm(db)
	var res *RestoreResult
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, q := range []string{"SET LOCAL statement_timeout = 0", "SET LOCAL idle_in_transaction_session_timeout = 0"} {
			if err := tx.Exec(q).Error; err != nil {
				return mapErr(err)
			}
		}
		// Servers migrate under this lock (migrate.go): one starting now
		// waits for the restore instead of creating a CA of its own.
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error; err != nil {
			return fmt.Errorf("take the migration lock: %w", mapErr(err))
		}
		if err := checkEmpty(tx, enginePostgres, br.header.Migrations); err != nil {
			return err
		}
		var err error
		res, err = load(ctx, tx, enginePostgres, br, o)
		return err
	})
	if err != nil {
		return nil, err // mapped where it arose: a damaged backup is not a database outage
	}
	return res, nil
}

func restoreSQLite(ctx context.Context, path string, br *backupReader, o RestoreOptions) (res *RestoreResult, err error) {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("restore into %s: the directory %s does not exist", path, dir)
	}
	if _, err := os.Stat(path); err == nil {
		if err := checkSQLiteEmpty(path, br.header.Migrations); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("restore into %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
			os.Remove(tmp + "-journal")
		}
	}()
	db, err := openGorm(&sqlite.Dialector{DriverName: sqliteDriverName, DSN: restoreSQLiteDSN(tmp)}, Options{}.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("restore into %s: %w", path, err)
	}
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.SetMaxOpenConns(1)
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, err = load(ctx, tx, engineSQLite, br, o)
		return err
	})
	closeGorm(db)
	if err != nil {
		return nil, err
	}
	if err := syncFile(tmp); err != nil {
		return nil, err
	}
	// A WAL beside the target belongs to the database that was there (an
	// empty one, or one deleted after a crash left its WAL not yet
	// checkpointed): SQLite would replay it into ours at the next open.
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("restore into %s: remove the old database's %s: %w", path, f, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("restore into %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return res, nil
}

// restoreSQLiteDSN opens the temporary file of a SQLite restore. It
// needs no journal and no fsync per commit: on any failure the file is
// thrown away, and it is synced once before the rename. Foreign keys are
// off while rows go in (they came from a consistent snapshot); times are
// written the way the server writes them.
func restoreSQLiteDSN(path string) string {
	return path + "?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=foreign_keys(0)" +
		"&_pragma=cache_size(-32768)&_pragma=temp_store(MEMORY)&_txlock=immediate&_time_format=sqlite"
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// checkSQLiteEmpty applies checkEmpty to an existing SQLite file.
func checkSQLiteEmpty(path string, backupIDs []string) error {
	db, err := openSQLiteReaders(path, Options{}.withDefaults())
	if err != nil {
		return err
	}
	defer closeGorm(db)
	return checkEmpty(db, engineSQLite, backupIDs)
}

// checkEmpty refuses a target that holds a row in any table, or whose
// schema is newer than the backup's (a migration the backup lacks: its
// rows would not fit). A schema alone, with no rows, is empty.
func checkEmpty(db *gorm.DB, engine string, backupIDs []string) error {
	tables, err := listTables(db, engine)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t == migrationsTable {
			var ids []string
			if err := db.Table(migrationsTable).Pluck("id", &ids).Error; err != nil {
				return mapErr(err)
			}
			for _, id := range ids {
				if !slices.Contains(backupIDs, id) {
					return fmt.Errorf("%w: its schema has migration %s, which the backup lacks; restore into a new database", ErrTargetNotEmpty, id)
				}
			}
			continue
		}
		rows, err := db.Raw("SELECT 1 FROM " + quoteIdent(t) + " LIMIT 1").Rows()
		if err != nil {
			return fmt.Errorf("check table %s: %w", t, mapErr(err))
		}
		has := rows.Next()
		rows.Close()
		if has {
			return fmt.Errorf("%w: table %s holds rows", ErrTargetNotEmpty, t)
		}
	}
	return nil
}

// load runs inside the restore's transaction: the backup's migrations,
// its rows, the newer migrations, then the clean-up of live state.
func load(ctx context.Context, tx *gorm.DB, engine string, br *backupReader, o RestoreOptions) (*RestoreResult, error) {
	// The first sections are the migrations and the CA issuers (see
	// snapshotOrder): the issuers are vetted before anything is written.
	first, err := br.nextTable()
	if err != nil {
		return nil, err
	}
	if first == nil || first.Name != migrationsTable {
		return nil, fmt.Errorf("%w: it does not start with the %s table", ErrBackupDamaged, migrationsTable)
	}
	if err := checkMigrationRows(first, br.header.Migrations); err != nil {
		return nil, err
	}
	issuers, err := br.nextTable()
	if err != nil {
		return nil, err
	}
	var buffered [][]any
	if issuers != nil && issuers.Name == (issuerRow{}).TableName() {
		var recs []ca.IssuerRecord
		err := issuers.each(func(vals []any) error {
			buffered = append(buffered, vals)
			recs = append(recs, issuerFromValues(issuers.Columns, vals))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if o.CheckIssuers != nil {
			if err := o.CheckIssuers(recs); err != nil {
				return nil, err
			}
		}
	} else if o.CheckIssuers != nil {
		if err := o.CheckIssuers(nil); err != nil {
			return nil, err
		}
	}

	mopts := *gormigrate.DefaultOptions
	mopts.UseTransaction = false // the restore's transaction holds it all
	var theirs []*gormigrate.Migration
	for _, m := range migrations() {
		if slices.Contains(br.header.Migrations, m.ID) {
			theirs = append(theirs, m)
		}
	}
	if err := gormigrate.New(tx, &mopts, theirs).Migrate(); err != nil {
		return nil, fmt.Errorf("create the backup's schema: %w", err)
	}
	tables, err := listTables(tx, engine)
	if err != nil {
		return nil, err
	}
	ld := &loader{ctx: ctx, tx: tx, engine: engine, tables: tables, progress: o.Progress}
	sec := issuers
	if sec != nil && buffered != nil {
		if err := ld.table(sec, buffered); err != nil {
			return nil, err
		}
		sec, err = br.nextTable()
		if err != nil {
			return nil, err
		}
	}
	for ; sec != nil; sec, err = br.nextTable() {
		if err := ld.table(sec, nil); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if err := gormigrate.New(tx, &mopts, migrations()).Migrate(); err != nil {
		return nil, fmt.Errorf("upgrade the restored schema: %w", err)
	}
	floor, err := voidLiveState(tx, o.Now())
	if err != nil {
		return nil, err
	}
	if engine == enginePostgres {
		if err := resetSequences(tx); err != nil {
			return nil, err
		}
	}
	return &RestoreResult{Manifest: br.manifest, CRLNumberFloor: floor}, nil
}

// checkMigrationRows reads the migrations section: it must list exactly
// the header's migrations (the header is what Restore checked).
func checkMigrationRows(sec *tableSection, want []string) error {
	idCol := slices.IndexFunc(sec.Columns, func(c column) bool { return c.Name == "id" })
	var ids []string
	err := sec.each(func(vals []any) error {
		if idCol >= 0 {
			if s, ok := vals[idCol].(string); ok {
				ids = append(ids, s)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		return fmt.Errorf("%w: its migrations table does not match its header", ErrBackupDamaged)
	}
	return nil
}

// issuerFromValues builds an issuer record from a ca_issuers row of the
// backup, by column name.
func issuerFromValues(cols []column, vals []any) ca.IssuerRecord {
	str := func(name string) string {
		for i, c := range cols {
			if c.Name == name {
				s, _ := vals[i].(string)
				return s
			}
		}
		return ""
	}
	r := issuerRow{ID: str("id"), Role: str("role"), State: str("state"), ParentID: str("parent_id"),
		CertPEM: str("cert_pem"), CSRPEM: str("csr_pem"), KeyRef: str("key_ref"), KeyPEM: str("key_pem"), CRLName: str("crl_name")}
	return r.toRecord()
}

// voidLiveState makes the restored database safe to serve from: nothing
// that was live when the backup was taken can be replayed, and nothing
// published after it can be contradicted. It returns the CRL number floor.
//
//   - CRL numbers (RFC 5280 §5.2.3: they must increase): the servers kept
//     publishing after the backup, so the backup's counters are behind.
//     Each issuer's counter moves to at least the restore time in Unix
//     milliseconds. Counters start at 1 and take one number per list
//     signed; a replica signs at most a few lists per issuer a second
//     (ca/crl: a 200 ms debounce after revocations, a 2 s poll), so a
//     counter that grew from an earlier restore's floor stays below the
//     clock in milliseconds unless hundreds of replicas sign without
//     pause. The floor is therefore above any number published before. The
//     stored CRLs go too: each issuer signs a fresh list at start instead
//     of serving the backup's, which clients may have seen superseded.
//   - Nonces: the MAC key is replaced, so no nonce handed out before
//     verifies, and the spent-nonce table is emptied.
//   - Console sessions end: a stolen cookie must not outlive a restore.
//   - Leases (sweeper, CA housekeeping, webhook dispatch) belonged to
//     processes of the old deployment: they are dropped, not waited out.
//   - The webhook outbox keeps only what was not delivered; claimed
//     deliveries are released and due at once (receivers already dedupe
//     by event id, so one sent after the backup may arrive twice).
func voidLiveState(tx *gorm.DB, now time.Time) (int64, error) {
	now = ts(now)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return 0, err
	}
	floor := now.UnixMilli()
	stmts := []struct {
		sql  string
		args []any
	}{
		{"DELETE FROM sessions", nil},
		{"DELETE FROM used_nonces", nil},
		{"DELETE FROM leases", nil},
		{"DELETE FROM crls", nil},
		{"DELETE FROM webhook_deliveries WHERE status = ?", []any{DeliveryDelivered}},
		{"UPDATE webhook_deliveries SET lease_holder = '', next_attempt_at = ? WHERE status = ? AND next_attempt_at > ?",
			[]any{now, DeliveryPending, now}},
		{`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
			[]any{acme.NonceKeySetting, hex.EncodeToString(key)}},
		{`INSERT INTO counters (name, value) SELECT CAST(? AS TEXT) || id, CAST(? AS BIGINT) FROM ca_issuers WHERE role = ?
			ON CONFLICT (name) DO UPDATE SET value = CASE WHEN counters.value < excluded.value THEN excluded.value ELSE counters.value END`,
			[]any{crlCounterPrefix, floor, string(ca.RoleIntermediate)}},
		{"UPDATE counters SET value = ? WHERE name LIKE ? AND value < ?", []any{floor, crlCounterPrefix + "%", floor}},
	}
	for _, s := range stmts {
		if err := tx.Exec(s.sql, s.args...).Error; err != nil {
			return 0, fmt.Errorf("reset live state (%.40s…): %w", s.sql, mapErr(err))
		}
	}
	return floor, nil
}

// resetSequences moves every Postgres sequence behind a serial or
// identity column past the restored rows; rows went in with their own
// values, which leave the sequences where they were.
func resetSequences(tx *gorm.DB) error {
	var cols []struct{ TableName, ColumnName string }
	err := tx.Raw(`SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')`).Scan(&cols).Error
	if err != nil {
		return fmt.Errorf("list sequences: %w", mapErr(err))
	}
	for _, c := range cols {
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX(%s) FROM %s), 0) + 1, false)",
			quoteIdent(c.ColumnName), quoteIdent(c.TableName))
		if err := tx.Exec(q, c.TableName, c.ColumnName).Error; err != nil {
			return fmt.Errorf("reset the sequence of %s.%s: %w", c.TableName, c.ColumnName, mapErr(err))
		}
	}
	return nil
}
