package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Options tunes Open. The zero value is fine: every field has a default.
type Options struct {
	// MaxOpenConns bounds the Postgres connection pool (default 20). SQLite
	// always uses one writing connection and sqliteReaders reading ones,
	// see openSQLite and openSQLiteReaders.
	MaxOpenConns int
	// StatementTimeout is Postgres' statement_timeout for every connection
	// (default 10s), so a stuck query frees its connection instead of
	// piling up requests behind it. Ignored by SQLite, where ctx applies.
	StatementTimeout time.Duration
	// Logger receives slow queries and database errors (never SQL
	// parameters: they may hold keys). Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultMaxOpenConns     = 20
	defaultStatementTimeout = 10 * time.Second
	connectTimeout          = 5 * time.Second
	slowQuery               = 250 * time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = defaultMaxOpenConns
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = defaultStatementTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Open connects to the database named by dsn, runs pending migrations and
// returns a Store. A dsn starting with postgres:// or postgresql:// selects
// Postgres; anything else is a SQLite file path, optionally prefixed with
// "sqlite:". Errors never contain the DSN's password.
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	var (
		db     *gorm.DB
		engine string
		err    error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		engine = enginePostgres
		db, err = openPostgres(ctx, dsn, opts)
	} else {
		engine = engineSQLite
		db, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), opts)
	}
	if err != nil {
		return nil, scrubPassword(err, dsn)
	}
	s := &gormStore{db: db, rd: db, engine: engine, now: func() time.Time { return time.Now().UTC() }}
	if err := migrate(ctx, s, opts.Logger); err != nil {
		_ = s.Close()
		return nil, scrubPassword(fmt.Errorf("migrate %s database: %w", engine, err), dsn)
	}
	if engine == engineSQLite {
		if path := strings.TrimPrefix(dsn, "sqlite:"); path != ":memory:" {
			rd, err := openSQLiteReaders(path, opts)
			if err == nil {
				s.rd = rd
			}
			if err != nil {
				_ = s.Close()
				return nil, err
			}
		}
		s.group = newGroupCommitter(db)
		return newAccountCache(s), nil
	}
	return s, nil
}

func gormConfig(opts Options) *gorm.Config {
	return &gorm.Config{
		// Every multi-row change here runs in an explicit transaction;
		// gorm's implicit one around single INSERTs only adds round trips.
		SkipDefaultTransaction: true,
		// No gorm PrepareStmt: its statement cache makes a transaction wait
		// for a statement another request is preparing outside it, which
		// deadlocks once every connection is held (SQLite has one). pgx
		// caches prepared statements per connection by itself, and so
		// does certmint's SQLite driver (sqlite_stmtcache.go).
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		Logger:  newGormLogger(opts.Logger, slowQuery),
	}
}

// openGorm opens with gorm's logging off: a failure to open is returned
// as an error (and reported once by the caller), not also logged as a
// second, less clear line.
func openGorm(d gorm.Dialector, opts Options) (*gorm.DB, error) {
	cfg := gormConfig(opts)
	quiet := *cfg
	quiet.Logger = logger.Discard
	db, err := gorm.Open(d, &quiet)
	if err != nil {
		return nil, err
	}
	db.Logger = cfg.Logger
	return db, nil
}

// openPostgres builds the pgx configuration itself rather than passing the
// DSN to gorm, so that the connect timeout and statement_timeout apply to
// every pooled connection, also the ones opened after a restart.
func openPostgres(ctx context.Context, dsn string, opts Options) (*gorm.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres DSN %s: %w", RedactDSN(dsn), err)
	}
	u, _ := url.Parse(dsn)
	if u == nil || u.Query().Get("connect_timeout") == "" {
		cfg.ConnectTimeout = connectTimeout
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	if err := applyFailover(dsn, cfg); err != nil {
		return nil, fmt.Errorf("postgres DSN %s: %w", RedactDSN(dsn), err)
	}
	sqlDB := stdlib.OpenDB(*cfg, stdlib.OptionResetSession(resetSession))
	sqlDB.SetMaxOpenConns(opts.MaxOpenConns)
	sqlDB.SetMaxIdleConns(opts.MaxOpenConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	db, err := openGorm(postgres.New(postgres.Config{Conn: sqlDB}), opts)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open postgres %s: %w", RedactDSN(dsn), mapErr(err))
	}
	// Each host pgx tries gets its own ConnectTimeout.
	pctx, cancel := context.WithTimeout(ctx, time.Duration(hostCount(cfg))*cfg.ConnectTimeout+time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", RedactDSN(dsn), unavailable(err))
	}
	return db, nil
}

// openSQLite opens the file with one connection, the store's only writer
// (plain reads go to the pool of openSQLiteReaders).
//
// Why one connection: SQLite allows one writer at a time. With several
// pooled connections, concurrent writers race for the file lock and a
// deferred transaction that upgrades from read to write can fail with
// "database is locked" at once, whatever busy_timeout says. A single
// connection makes database/sql queue the goroutines instead, which in WAL
// mode with synchronous=NORMAL is also the fastest way to run many small
// transactions. _txlock=immediate and busy_timeout additionally cover other
// processes (a CLI command next to the server) opening the same file.
// A 32 MiB page cache and memory-mapped reads spare system calls, which
// are dear on small VMs (about 4% of the CPU per issuance measured).
// The pragmas are DSN parameters so that they apply to every connection
// the driver opens, also after database/sql replaced a broken one.
func openSQLite(ctx context.Context, path string, opts Options) (*gorm.DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty database path")
	}
	if path != ":memory:" {
		dir := filepath.Dir(path)
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: directory %s: %w", path, dir, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("open sqlite %s: %s is not a directory", path, dir)
		}
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			return nil, fmt.Errorf("open sqlite %s: path is a directory", path)
		}
	}
	db, err := openGorm(&sqlite.Dialector{DriverName: sqliteDriverName, DSN: sqliteDSN(path, false)}, opts)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0) // a ":memory:" database lives as long as its connection
	sqlDB.SetConnMaxIdleTime(0)
	// A write proves the file is writable now rather than at the first
	// request; SQLite itself only opens the file lazily.
	for _, stmt := range []string{"CREATE TABLE IF NOT EXISTS certmint_probe (x INTEGER)", "DROP TABLE certmint_probe"} {
		if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open sqlite %s (is the file and its directory writable?): %w", path, err)
		}
	}
	return db, nil
}

func closeGorm(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// sqliteReaders is the size of the SQLite read pool.
const sqliteReaders = 4

// openSQLiteReaders opens the pool of read-only connections that serve the
// store's plain reads.
//
// Why: in WAL mode readers never wait for the writer, nor it for them, but
// with one connection for everything every read queued behind every write
// and commit, and a long console query (the dashboard's counts over all
// certificates) stalled issuance. Reads from here see every transaction
// committed before they start, and the store answers a write only after
// its commit, so a request still reads its own writes. query_only makes
// a write sent here by mistake fail instead of racing the writer.
func openSQLiteReaders(path string, opts Options) (*gorm.DB, error) {
	db, err := openGorm(&sqlite.Dialector{DriverName: sqliteDriverName, DSN: sqliteDSN(path, true)}, opts)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	sqlDB.SetMaxOpenConns(sqliteReaders)
	sqlDB.SetMaxIdleConns(sqliteReaders)
	sqlDB.SetConnMaxIdleTime(0)
	sqlDB.SetConnMaxLifetime(0)
	return db, nil
}

// sqliteDSN adds certmint's pragmas to a SQLite path. The writer begins
// its transactions IMMEDIATE (see openSQLite); a reader's are deferred,
// as a query_only connection cannot take the write lock, and it keeps a
// smaller page cache of its own.
//
// mmap stays off (mmap_size 0): in WAL mode, every read transaction that
// follows a commit drops its connection's page cache and unmaps the whole
// file, so under steady issuance each read paid a munmap (TLB shootdowns
// across threads) and page faults to map it again. Plain reads from the
// OS page cache cost about 10% less CPU per certificate (BENCHMARKS.md).
func sqliteDSN(path string, reader bool) string {
	q := url.Values{}
	pragmas := []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(5000)", "foreign_keys(1)", "cache_size(-32768)", "mmap_size(0)", "temp_store(MEMORY)"}
	txlock := "immediate"
	if reader {
		pragmas = append(pragmas, "cache_size(-8192)", "query_only(1)")
		txlock = "deferred"
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", txlock)
	q.Set("_time_format", "sqlite")
	return path + "?" + q.Encode()
}

// RedactDSN returns a database URL fit to show: its password, in the
// user part or as a password= parameter, replaced by xxxxx. A multi-host
// URL (host1:5432,host2:5432) keeps every host. Anything that does not
// parse as a URL is shown as "(unparsable DSN)", never as it is.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(unparsable DSN)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// scrubPassword removes the DSN's password from err's text, whatever
// library produced it, while keeping errors.Is/As working.
func scrubPassword(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil {
		return err
	}
	msg := err.Error()
	for _, pw := range dsnPasswords(u) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

// dsnPasswords are the passwords a URL carries, in the user part and as
// a password= parameter.
func dsnPasswords(u *url.URL) []string {
	var pws []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			pws = append(pws, pw)
		}
	}
	if pw := u.Query().Get("password"); pw != "" {
		pws = append(pws, pw)
	}
	return pws
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
