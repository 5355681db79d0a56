package kms

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    URI
		wantErr bool
	}{
		{"ok/full", "pkcs11:token=certmint;object=ca-int?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin",
			URI{Token: "certmint", Object: "ca-int", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "file:/etc/pin"}, false},
		{"ok/default-object", "pkcs11:token=my%20token?module-path=/m.so",
			URI{Token: "my token", Object: DefaultObject, ModulePath: "/m.so"}, false},
		{"fail/scheme", "pkcs12:token=x?module-path=/m.so", URI{}, true},
		{"fail/pin-value", "pkcs11:token=x?module-path=/m.so&pin-value=1234", URI{}, true},
		{"fail/no-token", "pkcs11:object=x?module-path=/m.so", URI{}, true},
		{"fail/no-module", "pkcs11:token=x", URI{}, true},
		{"fail/unknown", "pkcs11:token=x;colour=red?module-path=/m.so", URI{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseURI(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadURI) {
					t.Fatalf("err = %v, want ErrBadURI", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *u != tt.want {
				t.Fatalf("got %+v, want %+v", *u, tt.want)
			}
			back, err := ParseURI(u.String())
			if err != nil || *back != *u {
				t.Fatalf("round trip of %q: %+v, %v", u.String(), back, err)
			}
		})
	}
}

func TestPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &URI{Token: "t", ModulePath: "/m.so", PINSource: "file:" + file}
	t.Setenv(PINEnv, "from-env")
	if pin, err := u.PIN(); err != nil || pin != "s3cret" {
		t.Fatalf("pin-source: %q, %v", pin, err)
	}
	u.PINSource = ""
	if pin, err := u.PIN(); err != nil || pin != "from-env" {
		t.Fatalf("env: %q, %v", pin, err)
	}
	t.Setenv(PINEnv, "")
	if _, err := u.PIN(); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("no PIN: %v", err)
	}
	u.PINSource = filepath.Join(dir, "missing")
	_, err := u.PIN()
	if !errors.Is(err, ErrNoPIN) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestNoCgo: a build without cgo refuses every token with ErrNoPKCS11
// (run with CGO_ENABLED=0 go test ./ca/kms).
func TestNoCgo(t *testing.T) {
	if Available {
		t.Skip("this build has cgo; the refusal is for CGO_ENABLED=0 builds")
	}
	if _, err := Open(&URI{Token: "t", ModulePath: "/m.so"}); !errors.Is(err, ErrNoPKCS11) {
		t.Fatalf("Open = %v, want ErrNoPKCS11", err)
	}
}
