package ca

import (
	"errors"
	"testing"
)

// recordsWith returns the issuer records of a fresh CA whose keys were
// written with passphrase (none: in the clear).
func recordsWith(t *testing.T, passphrase string) []IssuerRecord {
	t.Helper()
	dir := t.TempDir() + "/ca"
	c, err := Open(Options{Dir: dir, Passphrase: []byte(passphrase), Now: newFakeClock().Now, Logger: quietLogger()})
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

// TestKeyStorage: what a backup reports of each key, by record.
func TestKeyStorage(t *testing.T) {
	for _, r := range recordsWith(t, "s3cret") {
		if got := r.KeyStorage(); got != KeyEncrypted {
			t.Errorf("%s key written with a passphrase: %s", r.Role, got)
		}
	}
	for _, r := range recordsWith(t, "") {
		if got := r.KeyStorage(); got != KeyPlain {
			t.Errorf("%s key written without a passphrase: %s", r.Role, got)
		}
	}
	for ref, want := range map[string]KeyStorage{"": KeyOffline, "pkcs11:token=ca;object=int": KeyToken, "intermediate.key": KeyFile} {
		if got := (IssuerRecord{KeyRef: ref}).KeyStorage(); got != want {
			t.Errorf("key ref %q: %s, want %s", ref, got, want)
		}
	}
}

// TestCheckKeys: the passphrase a restore is given must open every key
// the backup carries, before anything is written.
func TestCheckKeys(t *testing.T) {
	enc := recordsWith(t, "s3cret")
	if err := CheckKeys(enc, []byte("s3cret")); err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
	for _, wrong := range []string{"", "S3cret"} {
		if err := CheckKeys(enc, []byte(wrong)); !errors.Is(err, ErrBadPassphrase) {
			t.Errorf("passphrase %q: %v, want ErrBadPassphrase", wrong, err)
		}
	}
	if err := CheckKeys(recordsWith(t, ""), nil); err != nil {
		t.Errorf("keys in the clear need no passphrase: %v", err)
	}
	// A key that opens but belongs to another certificate is refused too.
	mixed := recordsWith(t, "")
	other := recordsWith(t, "")
	mixed[1].KeyPEM = other[1].KeyPEM
	if err := CheckKeys(mixed, nil); err == nil || errors.Is(err, ErrBadPassphrase) {
		t.Errorf("a key of another CA: %v, want a mismatch", err)
	}
}
