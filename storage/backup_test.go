package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/tools/pgtest"
)

// engineDSNs give a fresh, empty database of each engine: a SQLite path
// that does not exist yet, or a new Postgres database.
var engineDSNs = map[string]func(t *testing.T) string{
	"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "certmint.db") },
	"postgres": func(t *testing.T) string { return pgtest.Start(t) },
}

// fillEveryTable puts two rows in every table but migrations, whatever
// the schema holds: each column gets a value of its kind (text "r1",
// integer 1 or 0, a boolean, a time with microseconds, bytes), so a table added by
// a later migration is covered too. Text columns share the row's value,
// so the foreign keys (order_authzs → orders ...) find their parents.
func fillEveryTable(t *testing.T, db *gorm.DB, engine string) {
	t.Helper()
	tables, err := snapshotOrder(db, engine)
	noErr(t, "order tables", err)
	base := time.Date(2021, 6, 1, 12, 30, 45, 123456000, time.UTC)
	ld := &loader{ctx: context.Background(), tx: db, engine: engine}
	for _, table := range tables {
		if table == migrationsTable {
			continue
		}
		cols, err := ld.columns(table)
		noErr(t, "columns", err)
		for n := 1; n <= 2; n++ {
			var args []any
			for _, c := range cols {
				switch c.Kind {
				case kindText:
					args = append(args, fmt.Sprintf("r%d\n\"é\"", n))
				case kindInt: // 1 and 0: SQLite keeps booleans in integer columns
					args = append(args, int64(2-n))
				case kindFloat:
					args = append(args, float64(n)+0.5)
				case kindBool:
					args = append(args, n == 1)
				case kindTime:
					args = append(args, base.Add(time.Duration(n)*time.Hour))
				case kindBytes:
					args = append(args, []byte{0, byte(n), 0xff})
				}
			}
			if _, err := db.Statement.ConnPool.ExecContext(context.Background(), ld.insertSQL(table, cols, 1), args...); err != nil {
				t.Fatalf("fill %s: %v", table, err)
			}
		}
	}
}

func backupOf(t *testing.T, dsn string) ([]byte, *Manifest) {
	t.Helper()
	snap, err := OpenSnapshot(ctx(t), dsn)
	noErr(t, "open snapshot", err)
	defer snap.Close()
	var buf bytes.Buffer
	m, err := snap.Write(ctx(t), &buf, WriteOptions{Version: "test"})
	noErr(t, "write backup", err)
	return buf.Bytes(), m
}

func restoreFrom(t *testing.T, dsn string, data []byte, o RestoreOptions) (*RestoreResult, error) {
	t.Helper()
	return Restore(ctx(t), dsn, bytes.NewReader(data), o)
}

// dumpTables reads every table of dsn through a backup and returns its
// rows, engine-neutral (booleans as 0/1, as SQLite keeps them), sorted.
func dumpTables(t *testing.T, dsn string) map[string][]string {
	t.Helper()
	data, _ := backupOf(t, dsn)
	br, err := openBackupReader(bytes.NewReader(data))
	noErr(t, "read backup", err)
	out := map[string][]string{}
	for {
		sec, err := br.nextTable()
		noErr(t, "next table", err)
		if sec == nil {
			return out
		}
		rows := []string{}
		for {
			vals, err := sec.next()
			if errors.Is(err, io.EOF) {
				break
			}
			noErr(t, "row", err)
			for i, v := range vals {
				switch x := v.(type) {
				case bool:
					vals[i] = boolInt(x)
				case time.Time:
					vals[i] = x.UTC().Format(time.RFC3339Nano)
				}
			}
			b, _ := json.Marshal(vals)
			rows = append(rows, string(b))
		}
		sort.Strings(rows)
		out[sec.Name] = rows
	}
}

// indexDefs lists the database's indexes by table, name and definition.
func indexDefs(t *testing.T, s Store) []string {
	t.Helper()
	g := gormOf(s)
	q := `SELECT tbl_name || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' ORDER BY 1`
	if g.engine == enginePostgres {
		q = `SELECT tablename || ' ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1`
	}
	var defs []string
	noErr(t, "indexes", g.db.Raw(q).Scan(&defs).Error)
	return defs
}

// TestBackupHoldsEveryTable: a backup of a freshly migrated database
// holds every table gorm finds in it, each with all its rows. A table a
// later migration adds (another branch's audit seals, say) fails here
// if the backup does not pick it up by itself.
func TestBackupHoldsEveryTable(t *testing.T) {
	for name, dsnOf := range engineDSNs {
		t.Run(name, func(t *testing.T) {
			dsn := dsnOf(t)
			s := mustOpen(t, dsn)
			db := gormOf(s).db.WithContext(ctx(t))
			fillEveryTable(t, db, gormOf(s).engine)
			_, m := backupOf(t, dsn)
			tables, err := db.Migrator().GetTables()
			noErr(t, "tables", err)
			got := map[string]int64{}
			for _, ts := range m.Tables {
				got[ts.Name] = ts.Rows
			}
			for _, table := range tables {
				if strings.HasPrefix(table, "sqlite_") {
					continue
				}
				var n int64
				noErr(t, "count", db.Table(table).Count(&n).Error)
				if r, ok := got[table]; !ok {
					t.Errorf("table %s is not in the backup", table)
				} else if r != n {
					t.Errorf("table %s: %d rows in the backup, %d in the database", table, r, n)
				}
			}
			if len(m.Tables) != len(tables) {
				t.Errorf("backup has %d tables, the database %d", len(m.Tables), len(tables))
			}
			if want := migrations()[len(migrations())-1].ID; m.Schema != want {
				t.Errorf("schema %s, want %s", m.Schema, want)
			}
		})
	}
}

// liveTables are what a restore empties or rewrites on purpose
// (voidLiveState); the round trip compares them apart.
var liveTables = []string{"sessions", "used_nonces", "leases", "crls", "settings"}

// TestBackupRestoreAcrossEngines: every value of every table survives
// SQLite → Postgres, Postgres → SQLite and each engine to itself, and the
// restored database opens as a normal store.
func TestBackupRestoreAcrossEngines(t *testing.T) {
	for _, from := range []string{"sqlite", "postgres"} {
		for _, to := range []string{"sqlite", "postgres"} {
			t.Run(from+"-to-"+to, func(t *testing.T) {
				src := engineDSNs[from](t)
				s := mustOpen(t, src)
				fillEveryTable(t, gormOf(s).db.WithContext(ctx(t)), gormOf(s).engine)
				want := dumpTables(t, src)
				data, m := backupOf(t, src)
				if m.Engine != from {
					t.Fatalf("engine %s", m.Engine)
				}
				dst := engineDSNs[to](t)
				res, err := restoreFrom(t, dst, data, RestoreOptions{})
				noErr(t, "restore", err)
				if res.Manifest.ContentSHA256 != m.ContentSHA256 {
					t.Error("restore read another manifest")
				}
				got := dumpTables(t, dst)
				for table, rows := range want {
					switch {
					case table == "settings":
						if len(got[table]) != len(rows)+1 {
							t.Errorf("settings: %d rows, want the backup's %d and a new nonce key", len(got[table]), len(rows))
						}
					case slices.Contains(liveTables, table):
						if len(got[table]) != 0 {
							t.Errorf("%s: %d rows after restore, want none", table, len(got[table]))
						}
					case !slices.Equal(got[table], rows):
						t.Errorf("%s differs after restore:\n got %v\nwant %v", table, got[table], rows)
					}
				}
				if len(got) != len(want) {
					t.Errorf("%d tables after restore, want %d", len(got), len(want))
				}
				// A server opens it as any database of this version, with
				// the indexes a fresh one has.
				r := mustOpen(t, dst)
				if got, want := indexDefs(t, r), indexDefs(t, mustOpen(t, engineDSNs[to](t))); !slices.Equal(got, want) {
					t.Errorf("indexes after restore:\n got %v\nwant %v", got, want)
				}
				if _, err := r.GetSetting(ctx(t), "r1\n\"é\""); err != nil {
					t.Errorf("restored setting: %v", err)
				}
			})
		}
	}
}

// TestBackupProgress: the writer reports every table once at its end with
// its row count, in the order the file holds them, and the restore the
// same.
func TestBackupProgress(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	s := mustOpen(t, src)
	fillEveryTable(t, gormOf(s).db.WithContext(ctx(t)), engineSQLite)
	var seen []TableSum
	snap, err := OpenSnapshot(ctx(t), src)
	noErr(t, "snapshot", err)
	defer snap.Close()
	var buf bytes.Buffer
	m, err := snap.Write(ctx(t), &buf, WriteOptions{Progress: func(table string, rows int64, done bool) {
		if done {
			seen = append(seen, TableSum{Name: table, Rows: rows})
		}
	}})
	noErr(t, "write", err)
	if len(seen) != len(m.Tables) {
		t.Fatalf("progress for %d tables, the backup has %d", len(seen), len(m.Tables))
	}
	for i, ts := range m.Tables {
		if seen[i].Name != ts.Name || seen[i].Rows != ts.Rows {
			t.Errorf("progress %d: %+v, manifest %+v", i, seen[i], ts)
		}
	}
	var restored []string
	_, err = restoreFrom(t, filepath.Join(t.TempDir(), "certmint.db"), buf.Bytes(), RestoreOptions{Progress: func(table string, _ int64, done bool) {
		if done {
			restored = append(restored, table)
		}
	}})
	noErr(t, "restore", err)
	if len(restored) != len(m.Tables)-1 { // the migrations are run, not loaded
		t.Errorf("restore reported %d tables, want %d", len(restored), len(m.Tables)-1)
	}
}

// TestBackupReplacesKeyPEM: a key the caller hands in (sealed) goes into
// the backup in place of the stored one; the summary, the checksums and
// the restored row all have it, and the stored key appears nowhere in
// the file. A key for an issuer the snapshot lacks fails the backup.
func TestBackupReplacesKeyPEM(t *testing.T) {
	plainPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("plain key")})
	sealedPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTMINT ENCRYPTED PRIVATE KEY", Bytes: []byte("sealed key")})
	for engine, dsnOf := range engineDSNs {
		t.Run(engine, func(t *testing.T) {
			src := dsnOf(t)
			s := mustOpen(t, src)
			recs := []ca.IssuerRecord{
				{ID: "aa01", Role: ca.RoleRoot, State: ca.StateActive, KeyRef: ca.KeyRefDB, KeyPEM: plainPEM, CreatedAt: base},
				{ID: "bb02", Role: ca.RoleIntermediate, State: ca.StateActive, ParentID: "aa01", KeyRef: "pkcs11:token=t;object=o", CreatedAt: base},
			}
			noErr(t, "record", s.ChangeIssuers(ctx(t), recs, nil, nil))

			write := func(keys map[string][]byte) ([]byte, error) {
				snap, err := OpenSnapshot(ctx(t), src)
				noErr(t, "open snapshot", err)
				defer snap.Close()
				var buf bytes.Buffer
				_, err = snap.Write(ctx(t), &buf, WriteOptions{Version: "test", KeyPEM: keys})
				return buf.Bytes(), err
			}
			data, err := write(map[string][]byte{"aa01": sealedPEM})
			noErr(t, "write backup", err)
			m, err := VerifyBackup(bytes.NewReader(data))
			noErr(t, "verify", err)
			for _, iss := range m.Summary.Issuers {
				if iss.ID == "aa01" && iss.Key != ca.KeyEncrypted {
					t.Errorf("summary says the replaced key is %s", iss.Key)
				}
			}
			zr, err := gzip.NewReader(bytes.NewReader(data))
			noErr(t, "gunzip", err)
			raw, err := io.ReadAll(zr)
			noErr(t, "gunzip", err)
			if bytes.Contains(raw, []byte("BEGIN PRIVATE KEY")) {
				t.Error("the backup holds the stored key in the clear")
			}

			dst := engineDSNs["sqlite"](t)
			_, err = restoreFrom(t, dst, data, RestoreOptions{})
			noErr(t, "restore", err)
			got, err := mustOpen(t, dst).ListIssuers(ctx(t))
			noErr(t, "list", err)
			if len(got) != 2 || string(got[0].KeyPEM) != string(sealedPEM) || got[1].KeyRef != recs[1].KeyRef {
				t.Errorf("restored issuers: %+v", got)
			}

			if _, err := write(map[string][]byte{"zz99": sealedPEM}); err == nil || !strings.Contains(err.Error(), "zz99") {
				t.Errorf("a key for an issuer the snapshot lacks: %v", err)
			}
		})
	}
}
