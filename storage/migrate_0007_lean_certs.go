package storage

import "gorm.io/gorm"

// Migration 0007 drops certificate indexes nothing queries (lookups go by
// serial, account, state and expiry): every index is written on each
// issuance, and these three cost issuance time for no reader.
func init() {
	register("0007_lean_certificates", func(db *gorm.DB) error {
		for _, idx := range []string{"idx_certificates_ari_id", "idx_certificates_common_name", "idx_certificates_key_hash"} {
			if err := db.Exec("DROP INDEX IF EXISTS " + idx).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
