package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/tools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// suiteCase is one behaviour that must hold on every engine.
type suiteCase struct {
	name string
	fn   func(t *testing.T, s Store)
}

var suiteCases []suiteCase

// runSuite runs every suite case against a fresh store from open.
func runSuite(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range suiteCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func openSQLiteT(t *testing.T) Store {
	t.Helper()
	return mustOpen(t, filepath.Join(t.TempDir(), "certmint.db"))
}

func openPostgresT(t *testing.T) Store {
	t.Helper()
	return mustOpen(t, pgtest.Start(t))
}

func mustOpen(t *testing.T, dsn string) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLite(t *testing.T)   { runSuite(t, openSQLiteT) }
func TestPostgres(t *testing.T) { runSuite(t, openPostgresT) }

// TestMigrationsIdempotent reopens a migrated database: nothing runs
// twice and the data stays.
func TestMigrationsIdempotent(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "db") },
		"postgres": func(t *testing.T) string { return pgtest.Start(t) },
	} {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			s := mustOpen(t, dsn)
			a := newAccount(t, s)
			_ = s.Close()
			s = mustOpen(t, dsn)
			if _, err := s.GetAccount(ctx(t), a.ID); err != nil {
				t.Fatalf("account lost on reopen: %v", err)
			}
			var n int64
			if err := gormOf(s).db.Table("migrations").Count(&n).Error; err != nil || n != int64(len(migrations())) {
				t.Fatalf("migrations table has %d rows (err %v), want %d", n, err, len(migrations()))
			}
		})
	}
}

// TestPostgresConcurrentOpen: replicas starting together on one fresh
// database must not fail on each other's migrations.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, Options{})
			if err == nil {
				_ = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	c := context.Background()
	t.Run("postgres/unreachable", func(t *testing.T) {
		port := freeLoopbackPort(t)
		dsn := fmt.Sprintf("postgres://certmint:s3cretpw@127.0.0.1:%d/certmint?sslmode=disable", port)
		_, err := Open(c, dsn, Options{})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if msg := err.Error(); containsAny(msg, "s3cretpw") {
			t.Fatalf("error leaks the password: %s", msg)
		}
	})
	t.Run("postgres/bad-dsn", func(t *testing.T) {
		_, err := Open(c, "postgres://certmint:s3cretpw@127.0.0.1:notaport/db", Options{})
		if err == nil || containsAny(err.Error(), "s3cretpw") {
			t.Fatalf("err = %v, want an error without the password", err)
		}
	})
	t.Run("sqlite/missing-dir", func(t *testing.T) {
		_, err := Open(c, "sqlite:"+filepath.Join(t.TempDir(), "nope", "db.sqlite"), Options{})
		if err == nil || !containsAny(err.Error(), "nope") {
			t.Fatalf("err = %v, want an error naming the directory", err)
		}
	})
	t.Run("sqlite/path-is-dir", func(t *testing.T) {
		_, err := Open(c, t.TempDir(), Options{})
		if err == nil {
			t.Fatal("opening a directory as database succeeded")
		}
	})
}

// TestPostgresUnavailable stops the server under an open store: errors
// must say "unavailable", and the store must recover once it is back.
func TestPostgresUnavailable(t *testing.T) {
	cl, dsn := ownCluster(t)
	s := mustOpen(t, dsn)
	a := newAccount(t, s)
	if err := cl.StopServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx(t), a.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetAccount with server down: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping with server down: %v, want ErrUnavailable", err)
	}
	if err := cl.StartServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx(t), a.ID); err != nil {
		t.Fatalf("GetAccount after restart: %v", err)
	}
}

func TestPostgresStatementTimeout(t *testing.T) {
	dsn := pgtest.Start(t)
	s, err := Open(context.Background(), dsn, Options{StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = mapErr(gormOf(s).db.Exec("SELECT pg_sleep(2)").Error)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("slow statement: %v, want ErrUnavailable", err)
	}
}
