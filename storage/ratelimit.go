package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Window bounds are stored as Unix seconds: compact, the same on both
// engines, and cheap to compare in the primary key.

// AddRateLimitHits is a single upsert with RETURNING, so the hot path
// costs one round trip and concurrent replicas never lose a count.
func (s *gormStore) AddRateLimitHits(ctx context.Context, bucket string, start, end time.Time, n int64) (int64, error) {
	var hits int64
	err := s.q(ctx).Raw(`INSERT INTO rate_limits (bucket, window_start, expires, hits) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + excluded.hits
		RETURNING hits`, bucket, start.Unix(), end.Unix(), n).Row().Scan(&hits)
	if err != nil {
		return 0, fmt.Errorf("count rate limit %s: %w", bucket, mapErr(err))
	}
	return hits, nil
}

func (s *gormStore) RateLimitHits(ctx context.Context, bucket string, start time.Time) (int64, error) {
	var hits int64
	err := s.q(ctx).Raw(`SELECT hits FROM rate_limits WHERE bucket = ? AND window_start = ?`,
		bucket, start.Unix()).Row().Scan(&hits)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read rate limit %s: %w", bucket, mapErr(err))
	}
	return hits, nil
}

func (s *gormStore) SweepRateLimits(ctx context.Context, before time.Time) (int64, error) {
	res := s.q(ctx).Exec(`DELETE FROM rate_limits WHERE expires <= ?`, before.Unix())
	if res.Error != nil {
		return 0, fmt.Errorf("sweep rate limits: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}
