package storage

import "gorm.io/gorm"

// Migration 0005_ratelimit adds the rate-limit counters. On Postgres the
// table is UNLOGGED: it takes an update per ACME request on the issuance
// hot path, and writing each to the WAL buys nothing, as losing counters
// in a crash or a failover only resets some limits early.
func init() { register("0005_ratelimit", migrateRateLimit0005) }

func migrateRateLimit0005(tx *gorm.DB) error {
	unlogged := ""
	if tx.Dialector.Name() == enginePostgres {
		unlogged = "UNLOGGED "
	}
	if err := tx.Exec(`CREATE ` + unlogged + `TABLE rate_limits (
		bucket VARCHAR(255) NOT NULL,
		window_start BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		hits BIGINT NOT NULL,
		PRIMARY KEY (bucket, window_start))`).Error; err != nil {
		return err
	}
	return tx.Exec(`CREATE INDEX idx_rate_limits_expires ON rate_limits (expires)`).Error
}
