package storage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// registry collects the versioned migrations. Each migration lives in its
// own file (migrate_0001_core.go, later migrate_0002_*.go ...) and calls
// register from an init function, so adding one never edits another.
var registry []*gormigrate.Migration

// register adds migration id. IDs sort as strings: use a zero-padded
// sequence number and a word ("0002_console"). A migration must never
// change once released; write a new one instead. Migrations get a gorm
// handle inside a transaction and must work on SQLite and Postgres
// (tx.Dialector.Name() tells them apart when they cannot).
func register(id string, m func(*gorm.DB) error) {
	for _, r := range registry {
		if r.ID == id {
			panic("storage: duplicate migration " + id)
		}
	}
	registry = append(registry, &gormigrate.Migration{ID: id, Migrate: m})
}

// migrations returns the registered migrations in ID order.
func migrations() []*gormigrate.Migration {
	ms := slices.Clone(registry)
	slices.SortFunc(ms, func(a, b *gormigrate.Migration) int { return strings.Compare(a.ID, b.ID) })
	return ms
}

// migrationLockKey is the pg_advisory_lock key that serializes migrations
// of replicas starting at the same time ("certmint" in ASCII).
const migrationLockKey int64 = 0x63657274_6d696e74

// migrate runs the pending migrations in one transaction. On Postgres the
// whole run holds a session advisory lock on a dedicated connection, so
// two processes opening one database at once migrate one after the other
// and the second finds nothing to do.
func migrate(ctx context.Context, s *gormStore, log *slog.Logger) error {
	run := func(db *gorm.DB) error {
		opts := *gormigrate.DefaultOptions
		opts.UseTransaction = true
		start := time.Now()
		if err := gormigrate.New(db, &opts, migrations()).Migrate(); err != nil {
			return mapErr(err)
		}
		if d := time.Since(start); d > time.Second {
			log.Info("database migrated", "engine", s.engine, "duration", d)
		}
		return nil
	}
	db := s.db.WithContext(ctx)
	if s.engine != enginePostgres {
		return run(db)
	}
	return db.Connection(func(conn *gorm.DB) error {
		// The lock wait may exceed the normal statement timeout while
		// another replica migrates.
		if err := conn.Exec("SET statement_timeout = '5min'").Error; err != nil {
			return mapErr(err)
		}
		if err := conn.Exec("SELECT pg_advisory_lock(?)", migrationLockKey).Error; err != nil {
			return fmt.Errorf("take migration lock: %w", mapErr(err))
		}
		err := run(conn)
		// Unlock with a fresh context: ctx may be what failed run.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if uerr := conn.WithContext(uctx).Exec("SELECT pg_advisory_unlock(?)", migrationLockKey).Error; uerr != nil && err == nil {
			err = fmt.Errorf("release migration lock: %w", mapErr(uerr))
		}
		_ = conn.WithContext(uctx).Exec("RESET statement_timeout").Error
		return err
	})
}
