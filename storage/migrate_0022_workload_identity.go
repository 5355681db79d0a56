package storage

import "gorm.io/gorm"

// Migration 0022_workload_identity adds workload identities (issue 25):
// the SPIFFE path an EAB key binds (eab_keys.workload), the path an
// account was bound to when it registered with such a key
// (accounts.workload), and the SPIFFE ID each certificate and each
// inventory lineage carries (certificates.identity, lineages.identity).
// Rows that exist already have none, which is what they are. 2048 bytes
// is the longest SPIFFE ID (SPIFFE-ID §2.3). Plain ALTER TABLE works the
// same on SQLite and Postgres.
func init() {
	register("0022_workload_identity", func(db *gorm.DB) error {
		for _, stmt := range []string{
			`ALTER TABLE eab_keys ADD COLUMN workload VARCHAR(2048) NOT NULL DEFAULT ''`,
			`ALTER TABLE accounts ADD COLUMN workload VARCHAR(2048) NOT NULL DEFAULT ''`,
			`ALTER TABLE certificates ADD COLUMN identity VARCHAR(2048) NOT NULL DEFAULT ''`,
			`ALTER TABLE lineages ADD COLUMN identity VARCHAR(2048) NOT NULL DEFAULT ''`,
		} {
			if err := db.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
