package storage

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// schemaRows are the row types through which gorm reaches each table: the
// one declaration of the table's columns that every query of it uses.
var schemaRows = []any{
	&accountRow{}, &orderRow{}, &orderAuthzRow{}, &authzRow{}, &challengeRow{}, &certificateRow{},
	&eabKeyRow{}, &auditRow{}, &crlRow{}, &dnsPersistMatchRow{}, &issuerRow{}, &bundleFetchRow{},
	&AdminUser{}, &Session{}, &LoginThrottle{},
	&usedNonce{}, &setting{},
	&lineageRow{}, &webhookEndpointRow{}, &webhookDeliveryRow{}, &webhookMarkRow{},
	&auditSealRow{},
}

// rawTables are the tables that only hand-written upserts reach (no row
// type): their columns as those statements name them.
var rawTables = map[string][]string{
	"leases":      {"name", "holder", "expires_at"},
	"counters":    {"name", "value"},
	"rate_limits": {"bucket", "window_start", "expires", "hits"},
}

// TestSchemaMatchesRows migrates a fresh database and checks every table
// against its declaration: each column gorm derives from a row type exists,
// and the table has no column the type lacks. A field added without its
// migration, or a migration that drops or renames a column a query still
// names, fails here rather than in production.
func TestSchemaMatchesRows(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Store{
		"sqlite":   openSQLiteT,
		"postgres": openPostgresT,
	} {
		t.Run(name, func(t *testing.T) {
			db := gormOf(open(t)).db.WithContext(ctx(t))
			declared := map[string]bool{"migrations": true} // gormigrate's own
			for _, row := range schemaRows {
				sch, err := schema.Parse(row, &sync.Map{}, db.NamingStrategy)
				if err != nil {
					t.Fatalf("parse %T: %v", row, err)
				}
				declared[sch.Table] = true
				checkColumns(t, db, sch.Table, row, sch.DBNames)
			}
			for table, cols := range rawTables {
				declared[table] = true
				checkColumns(t, db, table, table, cols)
			}
			tables, err := db.Migrator().GetTables()
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range tables {
				if !declared[table] && !strings.HasPrefix(table, "sqlite_") {
					t.Errorf("table %s has no row type nor entry in rawTables", table)
				}
			}
		})
	}
}

// checkColumns compares the columns of table with want. model is a row
// value or the table's name, as gorm's Migrator takes either.
func checkColumns(t reporter, db *gorm.DB, table string, model any, want []string) {
	t.Helper()
	if !db.Migrator().HasTable(model) {
		t.Errorf("table %s does not exist", table)
		return
	}
	cols, err := db.Migrator().ColumnTypes(model)
	if err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	var have []string
	for _, c := range cols {
		have = append(have, strings.ToLower(c.Name()))
	}
	for _, c := range want {
		if !slices.Contains(have, c) {
			t.Errorf("%s: column %s is declared but missing from the migrated table (has %v)", table, c, have)
		}
	}
	for _, c := range have {
		if !slices.Contains(want, c) {
			t.Errorf("%s: column %s exists in the table but not in its declaration %v", table, c, want)
		}
	}
}

// TestSchemaTestSeesDrift: the check above really notices a column the
// table lacks and one the row type lacks (it would pass vacuously if, say,
// ColumnTypes returned the struct's own fields).
func TestSchemaTestSeesDrift(t *testing.T) {
	db := gormOf(mustOpen(t, filepath.Join(t.TempDir(), "certmint.db"))).db.WithContext(ctx(t))
	noErr(t, "add column", db.Exec("ALTER TABLE settings ADD COLUMN stray TEXT").Error)
	var ft fakeT
	checkColumns(&ft, db, "settings", &setting{}, []string{"name", "value", "missing"})
	if got := strings.Join(ft.errs, "\n"); !strings.Contains(got, "column missing is declared") ||
		!strings.Contains(got, "column stray exists") {
		t.Fatalf("drift not reported; got:\n%s", got)
	}
}

// reporter is the part of testing.T that checkColumns uses.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// fakeT collects what checkColumns reports.
type fakeT struct{ errs []string }

func (*fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) { f.Errorf(format, args...) }
