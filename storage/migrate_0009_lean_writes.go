package storage

import "gorm.io/gorm"

// Migration 0009 drops indexes that no query uses but every issuance paid
// for: each index is one more page an INSERT dirties and the commit writes
// to the WAL.
//   - audit_events: the console's audit search matches LOWER(column) LIKE
//     '%q%', which no index serves, and lists by id; the four single-column
//     indexes from 0002 only cost writes (one audit row per certificate).
//   - orders (account_id, created_at) and (created_at): an account's orders
//     are listed by (account_id, id), which 0001 indexes too, and order IDs
//     are time-ordered, so nothing sorts orders by created_at.
func init() {
	register("0009_lean_writes", func(db *gorm.DB) error {
		for _, idx := range []string{
			"idx_audit_events_at", "idx_audit_events_actor", "idx_audit_events_action", "idx_audit_events_target",
			"idx_orders_account", "idx_orders_created_at",
		} {
			if err := db.Exec("DROP INDEX IF EXISTS " + idx).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
