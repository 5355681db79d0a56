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

// TestSealKeys: keys kept in the clear come out sealed the way a server
// with a passphrase stores them, open with that passphrase only, and
// still match their certificates; other records are left as they are.
func TestSealKeys(t *testing.T) {
	plain := recordsWith(t, "")
	sealed, err := SealKeys(plain, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range sealed {
		if got := r.KeyStorage(); got != KeyEncrypted {
			t.Errorf("%s key after sealing: %s", r.Role, got)
		}
		if plain[i].KeyStorage() != KeyPlain {
			t.Errorf("SealKeys changed its input's %s record", r.Role)
		}
	}
	if err := CheckKeys(sealed, []byte("s3cret")); err != nil {
		t.Errorf("sealed keys with their passphrase: %v", err)
	}
	if err := CheckKeys(sealed, nil); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("sealed keys without a passphrase: %v, want ErrBadPassphrase", err)
	}

	enc := recordsWith(t, "s3cret")
	token := IssuerRecord{ID: "tok", KeyRef: "pkcs11:token=ca;object=int"}
	kept, err := SealKeys(append(enc, token), []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		if string(kept[i].KeyPEM) != string(enc[i].KeyPEM) {
			t.Errorf("an encrypted %s key was re-sealed; it must go as stored", enc[i].Role)
		}
	}
	if kept[len(enc)].KeyRef != token.KeyRef || kept[len(enc)].KeyPEM != nil {
		t.Errorf("a token record changed: %+v", kept[len(enc)])
	}
	if _, err := SealKeys(plain, nil); err == nil {
		t.Error("sealing without a passphrase did not fail")
	}
}
