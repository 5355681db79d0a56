package storage

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/ca"
)

// A backup is one consistent snapshot of every table, read inside one
// read transaction while servers keep writing:
//
//   - Postgres: REPEATABLE READ, READ ONLY. Every SELECT of the
//     transaction sees the database as of its first statement.
//   - SQLite: a read transaction on a WAL database. Its first SELECT pins
//     a snapshot that later commits do not change, and in WAL mode it
//     blocks no writer (the WAL grows until the backup ends instead of
//     being checkpointed). VACUUM INTO would also give a consistent copy,
//     but writes the whole database once more before it can be read: on
//     1,000,000 certificates it took 15 s and 4.1 GiB of disk before the
//     first row, where the whole streamed backup takes 31 s and no
//     temporary space (BENCHMARKS.md).
//
// The tables come from the live schema, not from a list kept here, so a
// table a later migration adds is backed up without an edit.

// snapshotTableSkip are tables that are never data: SQLite's own, and
// the probe openSQLite creates and drops at start-up.
func snapshotTableSkip(name string) bool {
	return strings.HasPrefix(name, "sqlite_") || name == "certmint_probe"
}

// migrationsTable is gormigrate's table of migrations run: the schema
// version travels in it.
const migrationsTable = "migrations"

// Snapshot is a read transaction over a whole database, from which a
// backup is written. Close it when done.
type Snapshot struct {
	db     *gorm.DB // the pool the transaction came from
	tx     *gorm.DB
	engine string
}

// OpenSnapshot opens the database named by dsn without migrating it (a
// backup never writes) and starts the read transaction. A SQLite file
// that does not exist is ErrNotFound, not a new database.
func OpenSnapshot(ctx context.Context, dsn string) (*Snapshot, error) {
	var (
		db     *gorm.DB
		engine string
		err    error
	)
	opts := Options{}.withDefaults()
	if isPostgresDSN(dsn) {
		engine = enginePostgres
		db, err = openPostgres(ctx, dsn, opts)
	} else {
		engine = engineSQLite
		path := strings.TrimPrefix(dsn, "sqlite:")
		if _, serr := os.Stat(path); serr != nil {
			return nil, fmt.Errorf("open %s: %w", path, ErrNotFound)
		}
		db, err = openSQLiteReaders(path, opts)
	}
	if err != nil {
		return nil, scrubPassword(err, dsn)
	}
	s := &Snapshot{db: db, engine: engine}
	var tx *gorm.DB
	if engine == enginePostgres {
		tx = db.WithContext(ctx).Begin(&sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	} else {
		tx = db.WithContext(ctx).Begin()
	}
	if tx.Error != nil {
		closeGorm(db)
		return nil, fmt.Errorf("begin the snapshot: %w", mapErr(tx.Error))
	}
	s.tx = tx
	if engine == enginePostgres {
		// A big table streams for longer than the server's statement
		// timeout; the snapshot must not be cut off either.
		for _, q := range []string{"SET LOCAL statement_timeout = 0", "SET LOCAL idle_in_transaction_session_timeout = 0"} {
			if err := tx.Exec(q).Error; err != nil {
				s.Close()
				return nil, fmt.Errorf("begin the snapshot: %w", mapErr(err))
			}
		}
	}
	return s, nil
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Close ends the read transaction and closes the database.
func (s *Snapshot) Close() error {
	if s.tx != nil {
		s.tx.Rollback()
	}
	closeGorm(s.db)
	return nil
}

// Issuers returns the CA issuers recorded in the snapshot, oldest first;
// none when the table does not exist (a database no server of this
// version has opened).
func (s *Snapshot) Issuers() ([]ca.IssuerRecord, error) {
	tables, err := listTables(s.tx, s.engine)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(tables, (issuerRow{}).TableName()) {
		return nil, nil
	}
	var rows []issuerRow
	if err := s.tx.Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read the CA issuers: %w", mapErr(err))
	}
	out := make([]ca.IssuerRecord, len(rows))
	for i := range rows {
		out[i] = rows[i].toRecord()
	}
	return out, nil
}

// WriteOptions tune Snapshot.Write.
type WriteOptions struct {
	Version string // certmint's version, recorded in the header
	// Progress, when set, hears of each table every progressEvery rows
	// and once at its end (done).
	Progress func(table string, rows int64, done bool)
	Now      func() time.Time
	// KeyPEM, by issuer id, replaces the key_pem the database stores for
	// that issuer as its row goes into the backup: the command line seals
	// keys kept in the clear this way. The summary and the checksums
	// cover the rows as written, so verify and restore see sealed keys.
	KeyPEM map[string][]byte
}

// progressEvery is how often a long table reports progress.
const progressEvery = 100_000

// Write streams the whole snapshot to w in the backup format
// (backupfile.go) and returns its manifest. Memory stays flat: rows go
// out one at a time as the database returns them.
func (s *Snapshot) Write(ctx context.Context, w io.Writer, o WriteOptions) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	tx := s.tx.WithContext(ctx)
	tables, err := snapshotOrder(tx, s.engine)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(tables, migrationsTable) {
		return nil, fmt.Errorf("the database has no %s table: it was never opened by certmint", migrationsTable)
	}
	var ids []string
	if err := tx.Table(migrationsTable).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("read the schema version: %w", mapErr(err))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("the database's %s table is empty", migrationsTable)
	}
	issuers, err := s.Issuers()
	if err != nil {
		return nil, err
	}
	for i, r := range issuers {
		if k, ok := o.KeyPEM[r.ID]; ok {
			issuers[i].KeyPEM = k
		}
	}
	h := BackupHeader{Format: backupFormat, Version: backupVersion, Certmint: o.Version, Engine: s.engine,
		Created: o.Now().UTC(), Schema: ids[len(ids)-1], Migrations: ids}
	bw := newBackupWriter(w)
	if err := bw.header(h); err != nil {
		return nil, err
	}
	m := &Manifest{BackupHeader: h, Summary: BackupSummary{Issuers: summarizeIssuers(issuers)}}
	for _, t := range tables {
		var edit func([]column, []any) error
		if t == (issuerRow{}).TableName() && len(o.KeyPEM) > 0 {
			edit = replaceKeyPEM(o.KeyPEM)
		}
		newest, err := s.writeTable(tx, bw, t, o.Progress, edit)
		if err != nil {
			return nil, err
		}
		if t == (certificateRow{}).TableName() {
			m.Summary.NewestCertificate = newest
		}
	}
	if err := bw.finish(m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeTable writes one table's section; edit, when set, may change each
// row before it is written (and checksummed). For the certificates table
// it also returns the newest created_at, for the summary.
func (s *Snapshot) writeTable(tx *gorm.DB, bw *backupWriter, table string, progress func(string, int64, bool), edit func([]column, []any) error) (*time.Time, error) {
	rows, err := tx.Raw("SELECT * FROM " + quoteIdent(table)).Rows()
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", table, mapErr(err))
	}
	defer rows.Close()
	cols, err := columnKinds(rows, table)
	if err != nil {
		return nil, err
	}
	if err := bw.beginTable(table, cols); err != nil {
		return nil, err
	}
	created := createdAtColumn(cols)
	var newest *time.Time
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read table %s: %w", table, mapErr(err))
		}
		if edit != nil {
			if err := edit(cols, vals); err != nil {
				return nil, err
			}
		}
		if err := bw.row(vals); err != nil {
			return nil, err
		}
		newest = newerCreatedAt(newest, created, vals)
		if progress != nil && bw.rows%progressEvery == 0 {
			progress(table, bw.rows, false)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table %s: %w", table, mapErr(err))
	}
	if edit != nil {
		if err := edit(cols, nil); err != nil {
			return nil, err
		}
	}
	sum, err := bw.endTable()
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(table, sum.Rows, true)
	}
	return newest, nil
}

// replaceKeyPEM is the edit of the ca_issuers rows that puts in the key
// PEM of keys, by issuer id. Called with nil values at the table's end,
// it fails unless every key went in: a key the caller sealed must never
// reach the file as stored.
func replaceKeyPEM(keys map[string][]byte) func([]column, []any) error {
	done := map[string]bool{}
	return func(cols []column, vals []any) error {
		if vals == nil {
			for id := range keys {
				if !done[id] {
					return fmt.Errorf("the snapshot has no CA issuer %s to put its sealed key in", id)
				}
			}
			return nil
		}
		idCol := slices.IndexFunc(cols, func(c column) bool { return c.Name == "id" })
		keyCol := slices.IndexFunc(cols, func(c column) bool { return c.Name == "key_pem" })
		if idCol < 0 || keyCol < 0 {
			return fmt.Errorf("table %s has no id or key_pem column", (issuerRow{}).TableName())
		}
		var id string
		switch v := vals[idCol].(type) {
		case string:
			id = v
		case []byte:
			id = string(v)
		}
		if k, ok := keys[id]; ok {
			vals[keyCol] = string(k)
			done[id] = true
		}
		return nil
	}
}

// createdAtColumn is the index of a section's created_at time column, or
// -1: the summary's newest certificate is the latest of its values.
func createdAtColumn(cols []column) int {
	return slices.IndexFunc(cols, func(c column) bool { return c.Name == "created_at" && c.Kind == kindTime })
}

// newerCreatedAt returns the later of newest and the row's created_at,
// read as the backup encodes it (appendValue), so the writer and
// VerifyBackup, which sees the decoded value, agree on every row.
func newerCreatedAt(newest *time.Time, created int, vals []any) *time.Time {
	if created < 0 {
		return newest
	}
	var t time.Time
	switch v := vals[created].(type) {
	case time.Time:
		t = v
	case string:
		t, _ = parseStoredTime(v)
	case []byte:
		t, _ = parseStoredTime(string(v))
	}
	if t.IsZero() || (newest != nil && !t.After(*newest)) {
		return newest
	}
	t = t.UTC()
	return &t
}

// columnKinds maps the result's column types onto the neutral kinds.
func columnKinds(rows *sql.Rows, table string) ([]column, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	cols := make([]column, len(types))
	for i, t := range types {
		k, ok := kindOfType(t.DatabaseTypeName())
		if !ok {
			return nil, fmt.Errorf("%w: column %s.%s has type %q, which a backup cannot carry", ErrBackupUnmappable, table, t.Name(), t.DatabaseTypeName())
		}
		cols[i] = column{Name: strings.ToLower(t.Name()), Kind: k}
	}
	return cols, nil
}

// kindOfType maps a column's declared type, as either engine names it,
// onto a kind. SQLite's NUMERIC is how gorm declares booleans there; they
// hold 0 and 1, so they travel as integers and become booleans again
// wherever the target column is one.
func kindOfType(dbType string) (string, bool) {
	t := strings.ToUpper(strings.TrimSpace(dbType))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch {
	case t == "BOOL" || t == "BOOLEAN":
		return kindBool, true
	case strings.Contains(t, "INT") || t == "NUMERIC":
		return kindInt, true
	case strings.HasPrefix(t, "TIMESTAMP") || t == "DATETIME" || t == "DATE":
		return kindTime, true
	case t == "BYTEA" || t == "BLOB":
		return kindBytes, true
	case strings.Contains(t, "CHAR") || strings.Contains(t, "TEXT") || t == "CLOB" || t == "UUID" || t == "JSON" || t == "JSONB":
		return kindText, true
	case t == "REAL" || strings.HasPrefix(t, "FLOAT") || strings.HasPrefix(t, "DOUBLE"):
		return kindFloat, true
	}
	return "", false
}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// listTables returns the tables of the live schema, by name.
func listTables(db *gorm.DB, engine string) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if engine == enginePostgres {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	var names, out []string
	if err := db.Raw(q).Scan(&names).Error; err != nil {
		return nil, fmt.Errorf("list tables: %w", mapErr(err))
	}
	for _, n := range names {
		if !snapshotTableSkip(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// foreignKeys returns each table's referenced tables.
func foreignKeys(db *gorm.DB, engine string) (map[string][]string, error) {
	q := `SELECT m.name AS child, f."table" AS parent FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'`
	if engine == enginePostgres {
		q = `SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c
			WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`
	}
	var pairs []struct{ Child, Parent string }
	if err := db.Raw(q).Scan(&pairs).Error; err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", mapErr(err))
	}
	out := map[string][]string{}
	for _, p := range pairs {
		if p.Child != p.Parent {
			out[p.Child] = append(out[p.Child], p.Parent)
		}
	}
	return out, nil
}

// snapshotOrder is the order tables go into a backup, which is the order
// a restore loads them in: every table after those its foreign keys
// reference (Postgres checks them row by row), and first the two a
// restore needs before it writes anything: the migrations (the schema)
// and the CA issuers (to check the passphrase).
func snapshotOrder(db *gorm.DB, engine string) ([]string, error) {
	tables, err := listTables(db, engine)
	if err != nil {
		return nil, err
	}
	parents, err := foreignKeys(db, engine)
	if err != nil {
		return nil, err
	}
	rank := func(t string) int {
		switch t {
		case migrationsTable:
			return 0
		case (issuerRow{}).TableName():
			return 1
		}
		return 2
	}
	slices.SortStableFunc(tables, func(a, b string) int { return rank(a) - rank(b) })
	var out []string
	placed := map[string]bool{}
	for len(out) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t] {
				continue
			}
			ready := true
			for _, p := range parents[t] {
				if !placed[p] && slices.Contains(tables, p) {
					ready = false
				}
			}
			if ready {
				out, placed[t], progress = append(out, t), true, true
				break // restart, so the earliest ready table in rank order goes next
			}
		}
		if !progress {
			return nil, errors.New("the foreign keys between tables form a cycle; a backup cannot order them")
		}
	}
	return out, nil
}

// summarizeIssuers describes each issuer for `backup verify`.
func summarizeIssuers(recs []ca.IssuerRecord) []BackupIssuer {
	out := make([]BackupIssuer, 0, len(recs))
	for _, r := range recs {
		bi := BackupIssuer{ID: r.ID, Role: string(r.Role), State: string(r.State), Key: r.KeyStorage()}
		if bi.Key == ca.KeyToken {
			bi.KeyURI = r.KeyRef
		}
		if block, _ := pem.Decode(r.CertPEM); block != nil {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				na := c.NotAfter.UTC()
				bi.Subject, bi.NotAfter = c.Subject.CommonName, &na
			}
		}
		out = append(out, bi)
	}
	return out
}
