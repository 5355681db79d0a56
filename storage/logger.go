package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormLogger sends gorm's slow queries and unexpected errors to slog. It
// is silent otherwise, and it never logs SQL parameters: nonces, JWKs and
// tokens travel through them. Expected outcomes (not found, unique
// violations, cancelled requests) are not errors of the database and are
// left to the caller.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

var (
	_ logger.Interface  = (*gormLogger)(nil)
	_ gorm.ParamsFilter = (*gormLogger)(nil)
)

func newGormLogger(l *slog.Logger, slow time.Duration) *gormLogger {
	return &gormLogger{log: l, slow: slow}
}

func (l *gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l *gormLogger) Info(context.Context, string, ...any) {}

func (l *gormLogger) Warn(ctx context.Context, msg string, _ ...any) {
	l.log.WarnContext(ctx, "gorm: "+msg)
}

func (l *gormLogger) Error(ctx context.Context, msg string, _ ...any) {
	l.log.ErrorContext(ctx, "gorm: "+msg)
}

// ParamsFilter drops the parameters, so the SQL handed to Trace keeps its
// placeholders.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !expectedErr(err):
		sql, _ := fc()
		l.log.ErrorContext(ctx, "database query failed", "sql", sql, "duration", elapsed, "err", err)
	case elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow database query", "sql", sql, "duration", elapsed, "rows", rows)
	}
}

func expectedErr(err error) bool {
	return errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, context.Canceled) || isUniqueViolation(err)
}
