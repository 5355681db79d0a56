package main

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certmint/certmint/ca"
)

// caRecords returns the issuer records of a fresh CA whose keys were
// written with passphrase (none: in the clear), as a server records them.
func caRecords(t *testing.T, passphrase string) []ca.IssuerRecord {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	c, err := ca.Open(ca.Options{Dir: dir, Passphrase: []byte(passphrase), RootName: "Test Root", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs, err := c.Records(dir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestBackupKeys: the passphrase rule of `certmint backup`. With
// CERTMINT_CA_PASSPHRASE, keys stored in the clear go in sealed under it
// and encrypted ones as stored (but the passphrase must open them);
// without it, keys in the clear need --allow-unencrypted-keys. A refusal
// is one usage line that never holds the passphrase.
func TestBackupKeys(t *testing.T) {
	const pass = "s3cret passphrase"
	plain, enc := caRecords(t, ""), caRecords(t, pass)
	cases := []struct {
		name       string
		recs       []ca.IssuerRecord
		passphrase string
		allowPlain bool
		wantSealed int
		wantErr    string
	}{
		{name: "fail/plain-no-passphrase", recs: plain, wantErr: "set CERTMINT_CA_PASSPHRASE (or CERTMINT_CA_PASSPHRASE_FILE) to back it up encrypted, or pass --allow-unencrypted-keys"},
		{name: "ok/plain-allowed", recs: plain, allowPlain: true},
		{name: "ok/plain-sealed", recs: plain, passphrase: pass, wantSealed: len(plain)},
		{name: "ok/plain-sealed-flag-moot", recs: plain, passphrase: pass, allowPlain: true, wantSealed: len(plain)},
		{name: "ok/encrypted-no-passphrase", recs: enc},
		{name: "ok/encrypted-as-stored", recs: enc, passphrase: pass},
		{name: "fail/encrypted-wrong-passphrase", recs: enc, passphrase: "not " + pass, wantErr: "the database's CA keys are encrypted and CERTMINT_CA_PASSPHRASE is missing or wrong"},
		{name: "fail/mixed-wrong-passphrase", recs: append(plain[:1:1], enc[1:]...), passphrase: "not " + pass, wantErr: "CERTMINT_CA_PASSPHRASE is missing or wrong"},
		{name: "fail/no-ca", wantErr: "records no CA yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := backupKeys(c.recs, []byte(c.passphrase), c.allowPlain)
			if c.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err %v, want one usage line containing %q", err, c.wantErr)
				}
				if c.passphrase != "" && strings.Contains(err.Error(), c.passphrase) {
					t.Fatalf("the refusal holds the passphrase: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != c.wantSealed {
				t.Fatalf("%d keys sealed, want %d", len(keys), c.wantSealed)
			}
			if c.wantSealed == 0 {
				return
			}
			// What the backup then holds: every key encrypted, opening
			// with the passphrase only, matching its certificate.
			written := make([]ca.IssuerRecord, len(c.recs))
			for i, r := range c.recs {
				written[i] = r
				if k, ok := keys[r.ID]; ok {
					written[i].KeyPEM = k
				}
				if got := written[i].KeyStorage(); got != ca.KeyEncrypted {
					t.Errorf("the %s key goes in %s", r.Role, got)
				}
			}
			if err := ca.CheckKeys(written, []byte(c.passphrase)); err != nil {
				t.Errorf("the sealed keys with the passphrase: %v", err)
			}
			if err := ca.CheckKeys(written, nil); !errors.Is(err, ca.ErrBadPassphrase) {
				t.Errorf("the sealed keys without the passphrase: %v, want ErrBadPassphrase", err)
			}
		})
	}
}
