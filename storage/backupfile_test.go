package storage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certmint/certmint/ca"
)

// TestVerifyBackupDamage: whatever part of the file changed, verify says
// damaged; here the parts no table checksum covers: bytes after the gzip
// stream, and the manifest line itself, whose summary `backup verify`
// prints (an edit must not make a backup of clear keys say "encrypted").
func TestVerifyBackupDamage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "certmint.db")
	s := mustOpen(t, src)
	newAccount(t, s)
	inter := ca.IssuerRecord{ID: "1a2b", Role: ca.RoleIntermediate, State: ca.StateActive, KeyRef: ca.KeyRefDB,
		KeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"), CreatedAt: base}
	noErr(t, "issuers", s.ChangeIssuers(ctx(t), []ca.IssuerRecord{inter}, nil, nil))
	good, _ := backupOf(t, src)
	if _, err := VerifyBackup(bytes.NewReader(good)); err != nil {
		t.Fatalf("a good backup: %v", err)
	}

	var second bytes.Buffer
	gz := gzip.NewWriter(&second)
	gz.Write([]byte(`{"manifest":{}}` + "\n"))
	gz.Close()
	manifestEdit := func(old, repl string) []byte {
		return recompress(t, good, func(s string) string {
			i := strings.LastIndex(s, `{"manifest":`)
			if !strings.Contains(s[i:], old) {
				t.Fatalf("the manifest lacks %q", old)
			}
			return s[:i] + strings.Replace(s[i:], old, repl, 1)
		})
	}
	cases := map[string][]byte{
		"garbage-after-gzip":     append(bytes.Clone(good), "trailing"...),
		"gzip-stream-after":      append(bytes.Clone(good), second.Bytes()...),
		"manifest-key-storage":   manifestEdit(`"key":"database-plain"`, `"key":"database-encrypted"`),
		"manifest-issuer-id":     manifestEdit(`"id":"1a2b"`, `"id":"9f9f"`),
		"manifest-certmint":      manifestEdit(`"certmint":"test"`, `"certmint":"v99"`),
		"manifest-issuers-empty": manifestEdit(`"issuers":[{`, `"issuers":[],"x":[{`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyBackup(bytes.NewReader(data)); !errors.Is(err, ErrBackupDamaged) {
				t.Fatalf("err = %v, want ErrBackupDamaged", err)
			}
		})
	}
}

// TestVerifyBackupSummary: the summary VerifyBackup derives from the rows
// matches the one the writer put in the manifest, from either engine,
// for every table filled with values of every kind.
func TestVerifyBackupSummary(t *testing.T) {
	for name, dsnOf := range engineDSNs {
		t.Run(name, func(t *testing.T) {
			dsn := dsnOf(t)
			s := mustOpen(t, dsn)
			fillEveryTable(t, gormOf(s).db.WithContext(ctx(t)), map[string]string{"sqlite": engineSQLite, "postgres": enginePostgres}[name])
			data, m := backupOf(t, dsn)
			if len(m.Summary.Issuers) != 2 || m.Summary.NewestCertificate == nil {
				t.Fatalf("summary %+v, want two issuers and a newest certificate", m.Summary)
			}
			if _, err := VerifyBackup(bytes.NewReader(data)); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}
