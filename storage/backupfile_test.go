package storage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"path/filepath"
	"testing"
)

// TestVerifyBackupDamage: whatever part of the file changed, verify says
// damaged; here the parts no table checksum covers: bytes after the gzip
// stream.
func TestVerifyBackupDamage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	s := mustOpen(t, src)
	newAccount(t, s)
	good, _ := backupOf(t, src)
	if _, err := VerifyBackup(bytes.NewReader(good)); err != nil {
		t.Fatalf("a good backup: %v", err)
	}

	var second bytes.Buffer
	gz := gzip.NewWriter(&second)
	gz.Write([]byte(`{"manifest":{}}` + "\n"))
	gz.Close()
	cases := map[string][]byte{
		"garbage-after-gzip": append(bytes.Clone(good), "trailing"...),
		"gzip-stream-after":  append(bytes.Clone(good), second.Bytes()...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyBackup(bytes.NewReader(data)); !errors.Is(err, ErrBackupDamaged) {
				t.Fatalf("err = %v, want ErrBackupDamaged", err)
			}
		})
	}
}
