package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

const (
	engineSQLite   = "sqlite"
	enginePostgres = "postgres"

	defaultPageLimit = 50
	maxPageLimit     = 1000
)

// gormStore implements Store on gorm for both engines. Only the few
// statements whose SQL differs between SQLite and Postgres look at engine.
type gormStore struct {
	db *gorm.DB
	// rd serves plain reads. On a SQLite file it is a pool of read-only
	// connections beside db's single one (see openSQLiteReaders); on
	// Postgres and :memory: it is db itself.
	rd     *gorm.DB
	engine string
	now    func() time.Time
	group  *groupCommitter // SQLite only: shared commits, see groupcommit.go
}

var _ Store = (*gormStore)(nil)

// Rows of the tables that have no exported model.
type usedNonce struct {
	Nonce   string `gorm:"primaryKey"`
	Expires time.Time
}

type setting struct {
	Name  string `gorm:"primaryKey"`
	Value string
}

// Ping checks that the database answers and, on Postgres, that it
// accepts writes: /readyz takes a replica out of rotation while only a
// standby answers, until a failover promotes one (docs/failover.md).
func (s *gormStore) Ping(ctx context.Context) error {
	if s.engine == enginePostgres {
		return pingWritable(ctx, s)
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

func (s *gormStore) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.rd != nil && s.rd != s.db {
		closeGorm(s.rd)
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Shared is true for Postgres; see acme.Store.
func (s *gormStore) Shared() bool { return s.engine == enginePostgres }

// q returns a handle for writes, bound to ctx.
func (s *gormStore) q(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// r returns a handle for reads outside transactions, bound to ctx.
func (s *gormStore) r(ctx context.Context) *gorm.DB { return s.rd.WithContext(ctx) }

// tx runs fn in a transaction and maps its error.
func (s *gormStore) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.group != nil {
		return mapErr(s.group.run(ctx, fn))
	}
	return mapErr(s.db.WithContext(ctx).Transaction(fn))
}

// casDone interprets a compare-and-set UPDATE of the row id in table: no
// error and one row changed is success; zero rows is ErrNotFound if the
// row does not exist and ErrConflict if it is in another state. The
// existence check only runs on the failure path.
func casDone(db *gorm.DB, res *gorm.DB, table, id string) error {
	if res.Error != nil {
		return mapErr(res.Error)
	}
	return casOutcome(db, res.RowsAffected, table, id)
}

func casOutcome(db *gorm.DB, changed int64, table, id string) error {
	if changed > 0 {
		return nil
	}
	var n int64
	if err := db.Table(table).Where("id = ?", id).Count(&n).Error; err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", table, id, ErrNotFound)
	}
	return fmt.Errorf("%s %s changed state: %w", table, id, ErrConflict)
}

// ts normalizes a time for storage: UTC with microsecond precision, the
// precision of Postgres, so both engines return what was stored.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func tsp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ts(*t)
	return &v
}

// utc converts times read back to UTC: pgx returns them in time.Local.
func utc(t time.Time) time.Time { return t.UTC() }

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func limitOf(p Page) int {
	switch {
	case p.Limit <= 0:
		return defaultPageLimit
	case p.Limit > maxPageLimit:
		return maxPageLimit
	}
	return p.Limit
}

// likeEscape escapes LIKE wildcards in user input; queries use ESCAPE '\'.
func likeEscape(s string) string {
	r := make([]rune, 0, len(s))
	for _, c := range s {
		if c == '\\' || c == '%' || c == '_' {
			r = append(r, '\\')
		}
		r = append(r, c)
	}
	return string(r)
}
