package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/tools/pgtest"
)

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:s3cret@db:5432/certmint", "postgres://u:xxxxx@db:5432/certmint"},
		{"postgres://u:s3cret@pg1:5432,pg2:5433/certmint?target_session_attrs=read-write",
			"postgres://u:xxxxx@pg1:5432,pg2:5433/certmint?target_session_attrs=read-write"},
		{"postgres://u@pg1,pg2/certmint?password=s3cret&sslmode=disable",
			"postgres://u@pg1,pg2/certmint?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/certmint", "postgres://u@db/certmint"},
		{"host=db password=s3cret", "(unparsable DSN)"},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubPasswordQueryParam(t *testing.T) {
	dsn := "postgres://u@pg1,pg2/certmint?password=s3cret"
	err := scrubPassword(fmt.Errorf("connect: %w", errors.New("auth with s3cret failed")), dsn)
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("scrubbed error still holds the password: %s", err)
	}
}

func TestApplyFailover(t *testing.T) {
	for _, tc := range []struct {
		name, dsn  string
		wantErr    bool
		readWrite  bool
		validating bool
	}{
		{name: "ok/one-host", dsn: "postgres://u@db/c"},
		{name: "ok/hosts-default-read-write", dsn: "postgres://u@pg1:5432,pg2:5433/c", validating: true},
		{name: "ok/hosts-read-write", dsn: "postgres://u@pg1,pg2/c?target_session_attrs=read-write", validating: true},
		{name: "ok/hosts-any-as-asked", dsn: "postgres://u@pg1,pg2/c?target_session_attrs=any"},
		{name: "fail/standby", dsn: "postgres://u@pg1,pg2/c?target_session_attrs=standby", wantErr: true},
		{name: "fail/read-only", dsn: "postgres://u@pg1/c?target_session_attrs=read-only", wantErr: true},
		{name: "fail/prefer-standby", dsn: "postgres://u@pg1,pg2/c?target_session_attrs=prefer-standby", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PGTARGETSESSIONATTRS", "")
			cfg, err := pgx.ParseConfig(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			err = applyFailover(tc.dsn, cfg)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "read-write") {
					t.Fatalf("err = %v, want a refusal that names read-write", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.ValidateConnect != nil; got != tc.validating {
				t.Fatalf("ValidateConnect set = %v, want %v", got, tc.validating)
			}
		})
	}
}

// TestPostgresMultiHost opens a store on a URL whose first host refuses
// connections: pgx moves on to the second, and Ping finds it writable.
func TestPostgresMultiHost(t *testing.T) {
	dsn := pgtest.Start(t)
	dead := freeLoopbackPort(t)
	multi := strings.Replace(dsn, "127.0.0.1:", fmt.Sprintf("127.0.0.1:%d,127.0.0.1:", dead), 1)
	s := mustOpen(t, multi)
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	noErr(t, "write", s.AddAuditEvent(ctx(t), audit.Event{Actor: "test", Action: "multi.host"}))
}

// TestPostgresReadOnlyEvicted fences the server read-only under an open
// store, as an operator does before a switchover: writes and Ping answer
// ErrUnavailable, and the pooled connection that met the read-only server
// is closed, not reused, so the store writes again on a new connection
// once the server accepts writes.
func TestPostgresReadOnlyEvicted(t *testing.T) {
	cl, dsn := ownCluster(t)
	c := ctx(t)
	s, err := Open(c, dsn, Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := gormOf(s)
	write := func() error { return s.AddAuditEvent(c, audit.Event{Actor: "test", Action: "fence"}) }
	noErr(t, "write before fencing", write())
	pid := func() int {
		var p int
		noErr(t, "backend pid", g.db.WithContext(c).Raw("SELECT pg_backend_pid()").Scan(&p).Error)
		return p
	}
	before := pid()

	fence := func(on bool) {
		t.Helper()
		stmt := "ALTER SYSTEM RESET default_transaction_read_only"
		if on {
			stmt = "ALTER SYSTEM SET default_transaction_read_only = on"
		}
		admin, err := pgx.Connect(c, cl.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(c)
		for _, q := range []string{"SET default_transaction_read_only = off", stmt, "SELECT pg_reload_conf()"} {
			if _, err := admin.Exec(c, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		time.Sleep(300 * time.Millisecond) // backends reread the configuration when idle
	}
	fence(true)
	if err := write(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write on a read-only server: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(c); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping on a read-only server: %v, want ErrUnavailable", err)
	}
	fence(false)
	noErr(t, "write after unfencing", write())
	if after := pid(); after == before {
		t.Fatalf("the store still uses backend %d, which answered read-only: not evicted", before)
	}
	noErr(t, "Ping after unfencing", s.Ping(c))
}

// ownCluster starts a cluster of the test's own, which it may stop or
// reconfigure (the shared one must stay as it is), and returns it with a
// fresh database's DSN. It is removed at cleanup.
func ownCluster(t *testing.T) (*pgtest.Cluster, string) {
	t.Helper()
	cl, err := pgtest.StartCluster()
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	dsn, err := cl.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cl, dsn
}
