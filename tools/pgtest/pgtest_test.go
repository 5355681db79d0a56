package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStartGivesFreshDatabases(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("Start returned the same DSN twice: %s", a)
	}
	if da, db := query(t, a), query(t, b); da == db {
		t.Fatalf("both DSNs reach database %s", da)
	}
}

func TestClusterRestart(t *testing.T) {
	c, err := StartCluster()
	if err != nil {
		Unavailable(t, err)
	}
	defer c.Stop()
	dsn, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	query(t, dsn)
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	query(t, dsn) // the data survives a restart
}

// TestStandbyPromote streams a synchronous standby from a primary: a row
// committed on the primary is on the standby, which refuses writes until
// it is promoted after the primary crashed.
func TestStandbyPromote(t *testing.T) {
	p, err := StartCluster()
	if err != nil {
		Unavailable(t, err)
	}
	defer p.Stop()
	dsn, err := p.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.StartStandby("standby1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.RequireSync(ctx, "standby1"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, dsn, "CREATE TABLE x (v int)", "INSERT INTO x VALUES (42)")
	sdsn := strings.Replace(dsn, fmt.Sprintf(":%d/", p.Port()), fmt.Sprintf(":%d/", s.Port()), 1)
	if err := execErr(sdsn, "INSERT INTO x VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write on the standby: %v, want a read-only error", err)
	}
	if err := p.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, sdsn, "INSERT INTO x VALUES (43)")
	conn, err := pgx.Connect(ctx, sdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM x WHERE v IN (42, 43)").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows on the promoted standby: %d, %v; want 2", n, err)
	}
}

func mustExec(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	if err := execErr(dsn, stmts...); err != nil {
		t.Fatal(err)
	}
}

func execErr(dsn string, stmts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
