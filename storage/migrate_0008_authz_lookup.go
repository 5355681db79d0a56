package storage

import "gorm.io/gorm"

// Migration 0008 widens the authorization reuse index by status. With only
// (account_id, type, value), SQLite's planner preferred the (account_id,
// status) index of 0006 for the reuse look-up of every new order, and so
// read all of an account's valid authorizations: a cost that grew with
// the account's history.
func init() {
	register("0008_authz_lookup", func(db *gorm.DB) error {
		if err := db.Exec("CREATE INDEX IF NOT EXISTS idx_authz_lookup ON authorizations (account_id, type, value, status)").Error; err != nil {
			return err
		}
		return db.Exec("DROP INDEX IF EXISTS idx_authz_reuse").Error
	})
}
