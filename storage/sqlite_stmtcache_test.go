package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	msqlite "modernc.org/sqlite"
)

// openStmtCacheDB opens a file database through certmint's caching driver
// with one connection, and returns that connection pinned, so that the
// tests can look into its cache with Raw while rows are open.
func openStmtCacheDB(t *testing.T) *sql.Conn {
	t.Helper()
	db, err := sql.Open(sqliteDriverName, "file:"+t.TempDir()+"/x.db")
	noErr(t, "open", err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	conn, err := db.Conn(ctx(t))
	noErr(t, "conn", err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = conn.ExecContext(ctx(t), "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
	noErr(t, "create table", err)
	return conn
}

// inspect runs fn on the driver connection behind conn.
func inspect(t *testing.T, conn *sql.Conn, fn func(c *stmtCacheConn)) {
	t.Helper()
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stmtCacheConn)
		if !ok {
			return fmt.Errorf("driver conn is %T, want *stmtCacheConn", dc)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		fn(c)
		return nil
	})
	noErr(t, "raw", err)
}

func cachedCount(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	var n int
	inspect(t, conn, func(c *stmtCacheConn) { n = len(c.stmts) })
	return n
}

func cached(t *testing.T, conn *sql.Conn, query string) *cachedStmt {
	t.Helper()
	var cs *cachedStmt
	inspect(t, conn, func(c *stmtCacheConn) { cs = c.stmts[query] })
	return cs
}

// The point of the cache: a statement run again and again is parsed once,
// and reusing it with other arguments (texts of other lengths, whose
// buffers the driver frees between runs) still stores and finds the right
// values.
func TestStmtCacheReusesStatement(t *testing.T) {
	conn := openStmtCacheDB(t)
	const ins = "INSERT INTO t (name) VALUES (?)"
	const sel = "SELECT name FROM t WHERE id = ?"
	base := cachedCount(t, conn)
	for i := 1; i <= 50; i++ {
		_, err := conn.ExecContext(ctx(t), ins, strings.Repeat("n", i))
		noErr(t, "insert", err)
	}
	first := cached(t, conn, ins)
	if first == nil {
		t.Fatalf("%q not cached", ins)
	}
	for i := 1; i <= 50; i++ {
		var name string
		noErr(t, "select", conn.QueryRowContext(ctx(t), sel, i).Scan(&name))
		if want := strings.Repeat("n", i); name != want {
			t.Fatalf("row %d: name = %q, want %q", i, name, want)
		}
	}
	if got := cachedCount(t, conn); got != base+2 {
		t.Fatalf("cache holds %d statements after 100 runs of 2 queries, want %d", got, base+2)
	}
	if cached(t, conn, ins) != first {
		t.Fatal("the cached INSERT was replaced rather than reused")
	}
}

// A query run again while rows of the same SQL are still open (gorm does
// this when preloading) cannot share the busy statement: it must run
// uncached, and both result sets must stay intact.
func TestStmtCacheNestedSameQuery(t *testing.T) {
	conn := openStmtCacheDB(t)
	for _, n := range []string{"a", "b", "c"} {
		_, err := conn.ExecContext(ctx(t), "INSERT INTO t (name) VALUES (?)", n)
		noErr(t, "insert", err)
	}
	const q = "SELECT name FROM t WHERE id >= ? ORDER BY id"
	outer, err := conn.QueryContext(ctx(t), q, 1)
	noErr(t, "outer query", err)
	defer outer.Close()
	if cs := cached(t, conn, q); cs == nil || !cs.busy {
		t.Fatalf("statement with open rows: cached %v, want cached and busy", cs)
	}
	n := cachedCount(t, conn)

	var got []string
	for outer.Next() {
		var name string
		noErr(t, "outer scan", outer.Scan(&name))
		inner, err := conn.QueryContext(ctx(t), q, 2)
		noErr(t, "inner query", err)
		var in []string
		for inner.Next() {
			var s string
			noErr(t, "inner scan", inner.Scan(&s))
			in = append(in, s)
		}
		noErr(t, "inner rows", inner.Err())
		noErr(t, "inner close", inner.Close())
		if strings.Join(in, ",") != "b,c" {
			t.Fatalf("inner rows = %v, want [b c]", in)
		}
		got = append(got, name)
	}
	noErr(t, "outer rows", outer.Err())
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("outer rows = %v, want [a b c]", got)
	}
	if got := cachedCount(t, conn); got != n {
		t.Fatalf("uncached fallback changed the cache size: %d, want %d", got, n)
	}
	noErr(t, "outer close", outer.Close())
	if cached(t, conn, q).busy {
		t.Fatal("statement still busy after its rows were closed")
	}
}

// Rows closed before their end must reset the statement: the next run
// starts from the first row again and uses the same cached statement.
func TestStmtCacheReusableAfterClose(t *testing.T) {
	conn := openStmtCacheDB(t)
	for _, n := range []string{"a", "b", "c"} {
		_, err := conn.ExecContext(ctx(t), "INSERT INTO t (name) VALUES (?)", n)
		noErr(t, "insert", err)
	}
	const q = "SELECT name FROM t ORDER BY id"
	var first *cachedStmt
	for i := range 3 {
		rows, err := conn.QueryContext(ctx(t), q)
		noErr(t, "query", err)
		if !rows.Next() {
			t.Fatalf("run %d: no rows: %v", i, rows.Err())
		}
		var name string
		noErr(t, "scan", rows.Scan(&name))
		if name != "a" {
			t.Fatalf("run %d: first row = %q, want a (statement not reset)", i, name)
		}
		noErr(t, "close", rows.Close())
		cs := cached(t, conn, q)
		if cs == nil || cs.busy {
			t.Fatalf("run %d: after Close cached = %v, want cached and not busy", i, cs)
		}
		if first == nil {
			first = cs
		} else if cs != first {
			t.Fatalf("run %d: a new statement was cached instead of reusing the first", i)
		}
	}
}

// Past maxCachedStatements distinct queries the cache stops growing, and
// the queries it no longer keeps still run and answer correctly.
func TestStmtCacheBounded(t *testing.T) {
	conn := openStmtCacheDB(t)
	extra := 20
	for i := range maxCachedStatements + extra {
		var got int
		noErr(t, "query", conn.QueryRowContext(ctx(t), fmt.Sprintf("SELECT %d + ?", i), 1).Scan(&got))
		if got != i+1 {
			t.Fatalf("query %d = %d, want %d", i, got, i+1)
		}
	}
	if got := cachedCount(t, conn); got != maxCachedStatements {
		t.Fatalf("cache holds %d statements, want the bound %d", got, maxCachedStatements)
	}
	last := fmt.Sprintf("SELECT %d + ?", maxCachedStatements+extra-1)
	if cached(t, conn, last) != nil {
		t.Fatalf("%q cached beyond the bound", last)
	}
	// Writes beyond the bound work too.
	_, err := conn.ExecContext(ctx(t), "INSERT INTO t (name) VALUES (?)", "beyond")
	noErr(t, "insert beyond bound", err)
	var n int
	noErr(t, "count", conn.QueryRowContext(ctx(t), "SELECT count(*) FROM t WHERE name = 'beyond'").Scan(&n))
	if n != 1 {
		t.Fatalf("row written beyond the bound: count = %d, want 1", n)
	}
}

// Cached statements run on the transaction's connection, so a transaction
// sees its own writes and a rollback undoes them.
func TestStmtCacheTransactions(t *testing.T) {
	conn := openStmtCacheDB(t)
	const ins = "INSERT INTO t (name) VALUES (?)"
	const cnt = "SELECT count(*) FROM t WHERE name = ?"
	count := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, name string) int {
		t.Helper()
		var n int
		noErr(t, "count", q.QueryRowContext(ctx(t), cnt, name).Scan(&n))
		return n
	}
	// Cache both statements before the transactions.
	_, err := conn.ExecContext(ctx(t), ins, "warm")
	noErr(t, "warm insert", err)
	_ = count(conn, "warm")

	tx, err := conn.BeginTx(ctx(t), nil)
	noErr(t, "begin", err)
	_, err = tx.ExecContext(ctx(t), ins, "rolled-back")
	noErr(t, "insert in tx", err)
	if n := count(tx, "rolled-back"); n != 1 {
		t.Fatalf("transaction does not see its own write: count = %d", n)
	}
	noErr(t, "rollback", tx.Rollback())
	if n := count(conn, "rolled-back"); n != 0 {
		t.Fatalf("rolled-back row visible: count = %d", n)
	}

	tx, err = conn.BeginTx(ctx(t), nil)
	noErr(t, "begin", err)
	_, err = tx.ExecContext(ctx(t), ins, "committed")
	noErr(t, "insert in tx", err)
	noErr(t, "commit", tx.Commit())
	if n := count(conn, "committed"); n != 1 {
		t.Fatalf("committed row: count = %d, want 1", n)
	}
	if cached(t, conn, ins) == nil || cached(t, conn, cnt) == nil {
		t.Fatal("statements run in transactions are not cached")
	}
}

// Errors from a cached statement keep modernc's type and code, which
// mapErr turns into ErrConflict, and the statement stays usable.
func TestStmtCacheErrors(t *testing.T) {
	conn := openStmtCacheDB(t)
	const ins = "INSERT INTO t (name) VALUES (?)"
	_, err := conn.ExecContext(ctx(t), ins, "dup")
	noErr(t, "insert", err)
	_, err = conn.ExecContext(ctx(t), ins, "dup")
	var sqErr *msqlite.Error
	if !errors.As(err, &sqErr) {
		t.Fatalf("duplicate insert: err = %T %v, want *sqlite.Error", err, err)
	}
	if sqErr.Code() != sqliteConstraintUnique {
		t.Fatalf("duplicate insert: code = %d, want %d (SQLITE_CONSTRAINT_UNIQUE)", sqErr.Code(), sqliteConstraintUnique)
	}
	wantErr(t, "mapErr(duplicate insert)", mapErr(err), ErrConflict)
	if cached(t, conn, ins) == nil {
		t.Fatalf("%q not cached", ins)
	}
	_, err = conn.ExecContext(ctx(t), ins, "other")
	noErr(t, "insert after constraint error", err)

	// An error while stepping a cached query must not leave it busy.
	const bad = "SELECT abs(?)"
	var v int64
	err = conn.QueryRowContext(ctx(t), bad, int64(-1<<63)).Scan(&v)
	if !errors.As(err, &sqErr) {
		t.Fatalf("abs(minint): err = %T %v, want *sqlite.Error", err, err)
	}
	noErr(t, "query after error", conn.QueryRowContext(ctx(t), bad, -5).Scan(&v))
	if v != 5 {
		t.Fatalf("abs(-5) = %d", v)
	}
	if cs := cached(t, conn, bad); cs == nil || cs.busy {
		t.Fatalf("after an error cached = %v, want cached and not busy", cs)
	}
}

// gorm's migrator reads declared column types through ColumnTypes, also
// from queries that return no row.
func TestStmtCacheColumnTypes(t *testing.T) {
	conn := openStmtCacheDB(t)
	const q = "SELECT id, name FROM t LIMIT 1"
	check := func(what string) {
		t.Helper()
		rows, err := conn.QueryContext(ctx(t), q)
		noErr(t, "query", err)
		defer rows.Close()
		if cached(t, conn, q) == nil {
			t.Fatalf("%s: %q not cached", what, q)
		}
		cts, err := rows.ColumnTypes()
		noErr(t, "column types", err)
		if len(cts) != 2 {
			t.Fatalf("%s: %d column types, want 2", what, len(cts))
		}
		for i, want := range []string{"INTEGER", "TEXT"} {
			if got := cts[i].DatabaseTypeName(); got != want {
				t.Fatalf("%s: column %s type %q, want %q", what, cts[i].Name(), got, want)
			}
		}
	}
	check("empty table")
	_, err := conn.ExecContext(ctx(t), "INSERT INTO t (name) VALUES ('x')")
	noErr(t, "insert", err)
	check("one row")
}
