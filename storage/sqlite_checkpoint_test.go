package storage

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

const (
	ckptRows    = 2000 // rows per round of writes
	ckptRowSize = 1000 // payload bytes per row
	ckptPerTx   = 100  // rows per transaction
)

// ckptExecer is what a round of writes needs: a *sql.DB or a *sql.Conn.
type ckptExecer interface {
	Exec(query string, args ...any) (sql.Result, error)
	Begin() (*sql.Tx, error)
}

// writeCkptRound appends ckptRows rows to table ck in transactions of
// ckptPerTx, the same pages each time it is called on the same schema.
func writeCkptRound(t *testing.T, db ckptExecer) {
	t.Helper()
	for i := 0; i < ckptRows; i += ckptPerTx {
		tx, err := db.Begin()
		noErr(t, "begin", err)
		for range ckptPerTx {
			if _, err := tx.Exec("INSERT INTO ck (payload) VALUES (randomblob(?))", ckptRowSize); err != nil {
				_ = tx.Rollback()
				t.Fatalf("insert: %v", err)
			}
		}
		noErr(t, "commit", tx.Commit())
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	noErr(t, "stat", err)
	return st.Size()
}

// The store's connection never checkpoints (wal_autocheckpoint(0)), so
// without the background checkpointer the WAL would grow by every write
// for the life of the server. This checks that the checkpointer copies the
// WAL into the database file while the store is open, that the WAL is then
// reused instead of growing, and that Close stops it.
func TestWALCheckpointer(t *testing.T) {
	dir := t.TempDir()

	// How big one round of writes makes a WAL that nobody checkpoints:
	// the same pragmas as the store, without its checkpointer.
	ref, err := sql.Open(sqliteDriverName, sqliteDSN(filepath.Join(dir, "ref.db")))
	noErr(t, "open reference db", err)
	ref.SetMaxOpenConns(1)
	_, err = ref.Exec("CREATE TABLE ck (id INTEGER PRIMARY KEY, payload BLOB)")
	noErr(t, "create reference table", err)
	writeCkptRound(t, ref)
	round := fileSize(t, filepath.Join(dir, "ref.db-wal"))
	noErr(t, "close reference db", ref.Close())
	if round < ckptRows*ckptRowSize {
		t.Fatalf("one round wrote a WAL of %d bytes, want at least the payload %d", round, ckptRows*ckptRowSize)
	}

	goroutines := runtime.NumGoroutine()
	path := filepath.Join(dir, "store.db")
	st, err := Open(ctx(t), path, Options{Logger: slog.New(slog.DiscardHandler)})
	noErr(t, "open store", err)
	closed := false
	defer func() {
		if !closed {
			_ = st.Close()
		}
	}()
	gs := st.(*accountCache).gormStore
	if gs.checkpointer == nil {
		t.Fatal("a SQLite file store has no checkpointer")
	}
	sqlDB, err := gs.db.DB()
	noErr(t, "sql db", err)
	_, err = sqlDB.Exec("CREATE TABLE ck (id INTEGER PRIMARY KEY, payload BLOB)")
	noErr(t, "create table", err)

	writeCkptRound(t, sqlDB)
	// The checkpointer copies the rows into the database file.
	deadline := time.Now().Add(3 * checkpointInterval)
	for fileSize(t, path) < ckptRows*ckptRowSize {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint within %v: database file %d bytes, WAL %d bytes",
				3*checkpointInterval, fileSize(t, path), fileSize(t, path+"-wal"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the checkpoint seen in progress finish (a later one completes it).
	time.Sleep(checkpointInterval + 100*time.Millisecond)

	// The next round starts the WAL over: its size stays about one round,
	// where without checkpoints it would be two.
	writeCkptRound(t, sqlDB)
	wal := fileSize(t, path+"-wal")
	t.Logf("WAL: %d bytes after two rounds with checkpoints, %d after one round without", wal, round)
	if wal > round*3/2 {
		t.Fatalf("WAL after two rounds is %d bytes; one round without checkpoints makes %d: the WAL is not reused", wal, round)
	}

	cp := gs.checkpointer
	noErr(t, "close store", st.Close())
	closed = true
	select {
	case <-cp.stop:
	default:
		t.Fatal("Close did not stop the checkpointer")
	}
	if err := cp.db.Ping(); err == nil {
		t.Fatal("the checkpointer's connection is still open after Close")
	}
	// No goroutine of the store outlives Close (database/sql's own may take
	// a moment to exit).
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before Open:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Everything written is in the database file for the next process.
	plain, err := sql.Open(sqliteDriverName, "file:"+path)
	noErr(t, "open plain", err)
	defer plain.Close()
	var n int
	noErr(t, "count", plain.QueryRow("SELECT count(*) FROM ck").Scan(&n))
	if n != 2*ckptRows {
		t.Fatalf("fresh connection sees %d rows, want %d", n, 2*ckptRows)
	}
}
