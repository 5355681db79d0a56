package storage

import "gorm.io/gorm"

// Migration 0020_console_team gives console users a role, a disabled flag
// and where they sign in (issue 20). Users that exist already were all
// administrators, so the default role is admin; users from an OpenID
// provider are written with their mapped role. Plain ALTER TABLE works
// the same on SQLite and Postgres.
func init() {
	register("0020_console_team", func(db *gorm.DB) error {
		for _, stmt := range []string{
			`ALTER TABLE admin_users ADD COLUMN role VARCHAR(16) NOT NULL DEFAULT 'admin'`,
			`ALTER TABLE admin_users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false`,
			`ALTER TABLE admin_users ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'local'`,
		} {
			if err := db.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
