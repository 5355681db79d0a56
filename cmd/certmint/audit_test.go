package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAuditVerifyMissingDB: a --db naming a SQLite file that does not
// exist is bad input (exit 2, nothing created), not a new empty database
// whose empty chain verifies.
func TestAuditVerifyMissingDB(t *testing.T) {
	dir := t.TempDir()
	for _, db := range []string{filepath.Join(dir, "typo.db"), "sqlite:" + filepath.Join(dir, "typo2.db")} {
		if code := run([]string{"audit", "verify", "--db", db}); code != 2 {
			t.Errorf("audit verify --db %s: exit %d, want 2", db, code)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("audit verify created %d files in %s", len(ents), dir)
	}
}
