package storage

import (
	"path/filepath"
	"testing"
	"time"
)

// openFileStore opens a SQLite file store and returns its gormStore.
func openFileStore(t *testing.T) *gormStore {
	t.Helper()
	s := mustOpen(t, filepath.Join(t.TempDir(), "certmint.db"))
	ac, ok := s.(*accountCache)
	if !ok {
		t.Fatalf("SQLite store is %T, want *accountCache", s)
	}
	return ac.gormStore
}

// TestSQLiteReadPoolIsReadOnly: the read pool is separate from the writer
// and refuses writes, so a write routed to it by mistake fails loudly
// instead of racing the writer for the file lock.
func TestSQLiteReadPoolIsReadOnly(t *testing.T) {
	gs := openFileStore(t)
	if gs.rd == gs.db {
		t.Fatal("a SQLite file store reads through its writer connection")
	}
	err := gs.r(ctx(t)).Exec("INSERT INTO settings (name, value) VALUES ('x', 'y')").Error
	if err == nil {
		t.Fatal("the read pool accepted an INSERT")
	}
}

// TestSQLiteReadersDoNotBlockWriter: a read transaction held open on the
// read pool (a long console query) neither delays a write nor hides it
// from reads that start after the write returned.
func TestSQLiteReadersDoNotBlockWriter(t *testing.T) {
	gs := openFileStore(t)
	before := newAccount(t, gs)

	// Hold a read snapshot open on one reader connection.
	rtx := gs.rd.WithContext(ctx(t)).Begin()
	noErr(t, "begin read", rtx.Error)
	defer rtx.Rollback()
	var n int64
	noErr(t, "read in snapshot", rtx.Raw("SELECT COUNT(*) FROM accounts").Scan(&n).Error)
	if n != 1 {
		t.Fatalf("snapshot sees %d accounts, want 1", n)
	}

	start := time.Now()
	after := newAccount(t, gs)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("write waited %v behind an open read", d)
	}
	// A new read (another reader connection) sees the write at once...
	got, err := gs.GetAccountByThumbprint(ctx(t), after.KeyThumbprint)
	noErr(t, "read own write", err)
	if got.ID != after.ID {
		t.Fatalf("read account %s, want %s", got.ID, after.ID)
	}
	// ...while the old snapshot still does not.
	noErr(t, "re-read snapshot", rtx.Raw("SELECT COUNT(*) FROM accounts").Scan(&n).Error)
	if n != 1 {
		t.Fatalf("open snapshot sees %d accounts, want still 1", n)
	}
	if _, err := gs.GetAccount(ctx(t), before.ID); err != nil {
		t.Fatal(err)
	}
}
