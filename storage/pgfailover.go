package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres failover (docs/failover.md). --db may name several hosts,
// postgres://u@pg1:5432,pg2:5432/certmint?target_session_attrs=read-write,
// and pgx tries them in order for every new connection, keeping the first
// that accepts writes. What certmint adds here is pool hygiene, so that a
// failover needs no restart:
//
//   - a pooled connection to a server that no longer accepts writes is
//     closed instead of being handed out again (evictTracer);
//   - every host gets a bounded connect time, and a host that vanishes
//     (power loss, partition) is noticed by TCP keepalive and a user
//     timeout instead of after the kernel's ~15 minutes of retransmits,
//     so no request waits on a dead primary (pgDialer);
//   - Ping, which /readyz calls, asks for a writable server, not just any
//     that answers (gormStore.Ping).

// readOnlyTSA are target_session_attrs values that lead to servers that
// refuse writes: certmint cannot serve from one.
var readOnlyTSA = map[string]bool{"read-only": true, "standby": true, "prefer-standby": true}

// applyFailover adjusts a parsed pgx configuration for failover. With
// several hosts and no target_session_attrs it defaults to read-write:
// pgx's own default ("any") would connect to a standby listed before the
// primary, and every write would fail there for as long as it answers.
func applyFailover(dsn string, cfg *pgx.ConnConfig) error {
	tsa := os.Getenv("PGTARGETSESSIONATTRS")
	if u, err := url.Parse(dsn); err == nil && u.Query().Has("target_session_attrs") {
		tsa = u.Query().Get("target_session_attrs")
	}
	if readOnlyTSA[tsa] {
		return fmt.Errorf("target_session_attrs=%s would connect certmint to a server that refuses writes; use read-write (the default when --db names several hosts)", tsa)
	}
	if tsa == "" && hostCount(cfg) > 1 {
		cfg.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}
	cfg.DialFunc = pgDialer().DialContext
	cfg.Tracer = evictTracer{}
	return nil
}

// hostCount is how many hosts pgx may try for one connection. Fallbacks
// also holds the plaintext retry of sslmode=prefer (the default), which
// is the same host.
func hostCount(cfg *pgx.ConnConfig) int {
	hosts := map[string]bool{fmt.Sprint(cfg.Host, ":", cfg.Port): true}
	for _, fb := range cfg.Fallbacks {
		hosts[fmt.Sprint(fb.Host, ":", fb.Port)] = true
	}
	return len(hosts)
}

// Keepalive and user timeout of connections to Postgres. A silent peer is
// given up after about tcpUserTimeout: probes start after tcpKeepIdle of
// quiet and must be acknowledged. A live server's kernel acknowledges
// them however long a query runs, so this never cuts a slow statement
// (statement_timeout does that).
const (
	tcpKeepIdle     = 5 * time.Second
	tcpKeepInterval = 5 * time.Second
	tcpUserTimeout  = 20 * time.Second
)

// pgDialer dials Postgres with keepalive probes and, on Linux, a
// TCP_USER_TIMEOUT. Without them a request on a connection to a primary
// that lost power waits for the kernel to give up retransmitting, which
// takes about 15 minutes, and the whole pool can drain into such waits.
// The connect time itself is bounded by the configuration's
// ConnectTimeout, per host.
func pgDialer() *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: tcpKeepIdle, Interval: tcpKeepInterval, Count: 3},
		Control:         setUserTimeout,
	}
}

// evictKey marks a pooled connection that must not be reused.
const evictKey = "certmint.evict"

// evictTracer watches every statement's outcome and marks the connection
// when the server refused a write because it is read-only (SQLSTATE 25006
// read_only_sql_transaction): a standby, a primary an operator fenced
// with default_transaction_read_only before a switchover, or one that was
// demoted. Such a connection stays open and healthy in pgx's eyes, so the
// pool would hand it out again and again; resetSession closes it instead,
// and the next connection goes through target_session_attrs to whichever
// host is writable now. Connections broken by the old primary going away
// need nothing: pgx closes them and the pool drops closed ones.
type evictTracer struct{}

func (evictTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (evictTracer) TraceQueryEnd(_ context.Context, conn *pgx.Conn, d pgx.TraceQueryEndData) {
	if d.Err != nil && isReadOnlyServer(d.Err) {
		markEvict(conn)
	}
}

func markEvict(conn *pgx.Conn) { conn.PgConn().CustomData()[evictKey] = true }

// resetSession runs before database/sql reuses a pooled connection;
// driver.ErrBadConn makes it close the connection and take another.
func resetSession(_ context.Context, conn *pgx.Conn) error {
	if conn.PgConn().CustomData()[evictKey] == true {
		return driver.ErrBadConn
	}
	return nil
}

// isReadOnlyServer reports SQLSTATE 25006: the server does not accept
// writes now.
func isReadOnlyServer(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// errNotWritable is Ping's answer from a server that refuses writes.
var errNotWritable = errors.New("the database server is read-only (a standby, or fenced)")

// pingWritable asks a pooled connection whether its server accepts
// writes. A read-only answer marks the connection for eviction, so the
// next check connects afresh and finds the new primary once there is one.
func pingWritable(ctx context.Context, s *gormStore) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		var ro string
		if err := c.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil {
			return err
		}
		if ro == "on" {
			markEvict(c)
			return errNotWritable
		}
		return nil
	})
	return unavailable(err)
}
