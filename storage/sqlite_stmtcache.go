package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync"

	msqlite "modernc.org/sqlite"
)

// sqliteDriverName is the database/sql name of the SQLite driver certmint
// opens: modernc's driver with a statement cache on every connection.
const sqliteDriverName = "certmint-sqlite"

// maxCachedStatements bounds each connection's statement cache. The hot
// path uses a few dozen distinct statements; gorm spells "IN (?,?,…)" lists
// with one placeholder per element, so the bound keeps odd lengths from
// growing the cache without end.
const maxCachedStatements = 256

func init() {
	sql.Register(sqliteDriverName, &stmtCacheDriver{inner: &msqlite.Driver{}})
}

// stmtCacheDriver hands out connections that keep every statement they
// have parsed. gorm runs its SQL through Conn.ExecContext/QueryContext,
// which in the driver prepare, run and finalize a statement each time:
// parsing was about 13% of the server's CPU per issuance. Keeping the
// prepared statement per connection removes that without gorm's own
// PrepareStmt mode, whose pool-wide cache can deadlock a single-connection
// pool (a transaction waits for a statement being prepared outside it).
type stmtCacheDriver struct{ inner driver.Driver }

func (d *stmtCacheDriver) Open(name string) (driver.Conn, error) {
	c, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return newStmtCacheConn(c)
}

// innerConn is what certmint needs of the driver's connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool // rows from it are still open
}

// stmtCacheConn is used by one goroutine at a time (database/sql's
// contract for a driver.Conn), so the cache needs no lock of its own; mu
// only guards rows closed from another goroutine after a cancel.
type stmtCacheConn struct {
	innerConn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

func newStmtCacheConn(c driver.Conn) (driver.Conn, error) {
	ic, ok := c.(innerConn)
	if !ok {
		_ = c.Close()
		return nil, errors.New("sqlite driver lacks a context-aware connection")
	}
	return &stmtCacheConn{innerConn: ic, stmts: map[string]*cachedStmt{}}, nil
}

// statement returns the cached statement for query, preparing it on first
// use, or nil when it is in use by open rows or the cache is full (the
// caller then runs query uncached).
func (c *stmtCacheConn) statement(ctx context.Context, query string) (*cachedStmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil, nil
		}
		return cs, nil
	}
	if len(c.stmts) >= maxCachedStatements {
		return nil, nil
	}
	st, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	full, ok := st.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		_ = st.Close()
		return nil, nil
	}
	cs := &cachedStmt{stmt: full}
	c.stmts[query] = cs
	return cs, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	cs.busy = true
	c.mu.Unlock()
	return &cachedRows{Rows: rows, release: func() {
		c.mu.Lock()
		cs.busy = false
		c.mu.Unlock()
	}}, nil
}

// Close finalizes the cached statements before the connection, which
// SQLite requires for a clean close.
func (c *stmtCacheConn) Close() error {
	c.mu.Lock()
	for q, cs := range c.stmts {
		_ = cs.stmt.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.innerConn.Close()
}

// cachedRows resets its statement for reuse on Close (the driver does the
// reset) and passes column metadata through, which gorm's migrator reads.
type cachedRows struct {
	driver.Rows
	release func()
	once    sync.Once
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.release)
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
