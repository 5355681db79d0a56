package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	msqlite "modernc.org/sqlite"
)

// mapErr turns driver and gorm errors into the package's sentinel errors,
// keeping the original error in the chain for logs. It is applied to every
// error that leaves the package.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case isUniqueViolation(err):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// unavailable wraps err as ErrUnavailable: used where any failure means
// the database cannot be reached (the initial ping).
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// SQLite extended result codes for unique and primary key violations
// (https://www.sqlite.org/rescode.html).
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
	sqliteBusy                 = 5
	sqliteLocked               = 6
)

func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var sqErr *msqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqliteConstraintUnique || sqErr.Code() == sqliteConstraintPrimaryKey
	}
	return false
}

// isUnavailable reports failures that say "the database cannot answer
// now" rather than "this request is wrong": callers turn them into 503s
// with Retry-After.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection_exception class
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now (starting up)
			pgErr.Code == "57014", // query_canceled (statement_timeout)
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "40001", // serialization_failure: retry later
			pgErr.Code == "40P01", // deadlock_detected: retry later
			pgErr.Code == "25006": // read_only_sql_transaction: a standby, until failover promotes one
			return true
		}
		return false
	}
	var sqErr *msqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code() & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), pgconn.Timeout(err):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "broken pipe", "connection reset",
		"the database system is starting up", "the database system is shutting down",
		"conn closed", "unexpected EOF", "timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
