package storage

import "gorm.io/gorm"

// Migration 0010 turns the status indexes of orders and authorizations into
// partial indexes. Every issuance moves an order pending → ready → valid
// and an authorization pending → valid; a full index on status (or one
// with status among its columns) moved its entry at each step, and every
// moved entry is one more page the commit writes to the WAL. A partial
// index holds only the rows its queries look for, so most steps leave it
// alone or only drop an entry.
//
//   - orders: idx_orders_unfinished (status, id) WHERE status <> 'valid'
//     replaces (status) and (expires). It serves the expiry sweep, crash
//     recovery of processing orders and the console's status filter for
//     every status but valid, which is most orders and needs no index.
//     (replaces) goes: no query looks orders up by it (renewals are
//     tracked on the certificate, replaced_by).
//   - authorizations: idx_authz_pending (account_id) WHERE pending, for
//     the per-account cap and the expiry sweep, and idx_authz_reusable
//     (account_id, type, value, wildcard, expires) WHERE valid, for reuse,
//     replace (status), (expires), (account_id, status) and
//     (account_id, type, value, status).
//
// A query uses a partial index only when its own WHERE clause repeats the
// index's condition as written, with literals (SQLite's rule; Postgres's
// generic plans for prepared statements cannot use bound values for it
// either). The queries these serve therefore spell the condition out; see
// the constants below and TestPartialIndexPlans.
func init() {
	register("0010_partial_indexes", func(db *gorm.DB) error {
		for _, q := range []string{
			"DROP INDEX IF EXISTS idx_orders_status",
			"DROP INDEX IF EXISTS idx_orders_expires",
			"DROP INDEX IF EXISTS idx_orders_replaces",
			"CREATE INDEX IF NOT EXISTS idx_orders_unfinished ON orders (status, id) WHERE " + orderUnfinished,
			"DROP INDEX IF EXISTS idx_authorizations_status",
			"DROP INDEX IF EXISTS idx_authorizations_expires",
			"DROP INDEX IF EXISTS idx_authz_account_status",
			"DROP INDEX IF EXISTS idx_authz_lookup",
			"CREATE INDEX IF NOT EXISTS idx_authz_pending ON authorizations (account_id) WHERE " + authzPending,
			"CREATE INDEX IF NOT EXISTS idx_authz_reusable ON authorizations (account_id, type, value, wildcard, expires) WHERE " + authzValid,
		} {
			if err := db.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// The conditions of the partial indexes, to be repeated verbatim by the
// queries that need them.
const (
	orderUnfinished = "status <> 'valid'"
	authzPending    = "status = 'pending'"
	authzValid      = "status = 'valid'"
)
