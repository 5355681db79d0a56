package storage

import "gorm.io/gorm"

// Migration 0011: finalize signs synchronously (the order goes from ready
// to valid in one transaction), so no order is ever left "processing" and
// the crash-recovery stamp processing_at has no reader. Orders an older
// version left processing go back to ready, where the client's retried
// finalize signs them, and the column goes.
func init() {
	register("0011_no_processing", func(db *gorm.DB) error {
		if err := db.Exec("UPDATE orders SET status = 'ready' WHERE status = 'processing'").Error; err != nil {
			return err
		}
		return db.Exec("ALTER TABLE orders DROP COLUMN processing_at").Error
	})
}
