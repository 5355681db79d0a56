package truststore

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(dir, "corp-root.crt")
	if err := os.WriteFile(other, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s := &SystemStore{flavor: systemFlavor{dir: dir, ext: ".crt", update: []string{"update-ca-certificates"}}, run: rec.run}
	a, b := newRoot(t, "A"), newRoot(t, "B")

	if r := Change(ctx, s, []*x509.Certificate{a, b}, nil); r.Err != nil || len(r.Added) != 2 {
		t.Fatalf("install: %+v", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, EntryName(Fingerprint(a))+".crt"))
	if err != nil || !bytes.Equal(data, encodePEM(a)) {
		t.Fatalf("root file: %v %q", err, data)
	}
	if len(rec.calls) != 1 || rec.calls[0].String() != "update-ca-certificates" {
		t.Fatalf("the bundle is rebuilt once per change: %v", rec.calls)
	}
	// A certmint-named file that does not hold its root is not ours.
	forged := filepath.Join(dir, EntryName(Fingerprint(newRoot(t, "C")))+".crt")
	if err := os.WriteFile(forged, encodePEM(a), 0o644); err != nil {
		t.Fatal(err)
	}
	have, err := s.Installed(ctx)
	if err != nil || len(have) != 2 {
		t.Fatalf("installed: %v %v", have, err)
	}
	if r := Change(ctx, s, nil, func(string) bool { return true }); r.Err != nil || len(r.Removed) != 2 {
		t.Fatalf("uninstall: %+v", r)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 || !contains(left, other) || !contains(left, forged) {
		t.Fatalf("uninstall touched what certmint did not add: %v", left)
	}

	rec.out = func([]string) ([]byte, error) { return nil, errors.New("update failed") }
	if r := Change(ctx, s, []*x509.Certificate{a}, nil); r.Err == nil {
		t.Fatal("a failed update-ca-certificates was not reported")
	}
	if _, err := os.Stat(filepath.Join(dir, EntryName(Fingerprint(a))+".crt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file of a failed install stayed: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestJavaStore(t *testing.T) {
	ctx := context.Background()
	a := newRoot(t, "A")
	fa := Fingerprint(a)
	list := "Keystore type: JKS\n\nYour keystore contains 3 entries\n\n" +
		"Alias name: debian:" + EntryName(fa) + ".pem\nCreation date: Nov 29, 2026\nEntry type: trustedCertEntry\n\n" + string(encodePEM(a)) + "\n\n" +
		"Alias name: " + EntryName(fa) + "\nCreation date: Nov 29, 2026\nEntry type: trustedCertEntry\n\n" + string(encodePEM(a)) + "\n\n" +
		"Alias name: " + EntryName(Fingerprint(newRoot(t, "B"))) + "\nCreation date: Nov 29, 2026\nEntry type: trustedCertEntry\n\n" + string(encodePEM(a)) + "\n"
	rec := &recorder{out: func(args []string) ([]byte, error) {
		if contains(args, "-list") {
			return []byte(list), nil
		}
		return nil, nil
	}}
	ks := filepath.Join(t.TempDir(), "cacerts")
	if err := os.WriteFile(ks, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &JavaStore{Keystore: ks, Keytool: "keytool", Password: "s3cret-pass", run: rec.run}
	have, err := s.Installed(ctx)
	if err != nil || len(have) != 1 || have[fa] == nil {
		t.Fatalf("installed: only the certmint alias whose certificate matches counts: %v %v", have, err)
	}
	if r := Change(ctx, s, nil, func(string) bool { return true }); r.Err != nil || len(r.Removed) != 1 {
		t.Fatalf("uninstall: %+v", r)
	}

	// A root Debian's system store put in cacerts counts as trusted, is
	// not added twice, and is not keytool's to remove.
	c := newRoot(t, "C")
	list += "\nAlias name: " + debianAlias(Fingerprint(c)) + "\nCreation date: Nov 29, 2026\nEntry type: trustedCertEntry\n\n" + string(encodePEM(c)) + "\n"
	rec.calls = nil
	if r := Change(ctx, s, []*x509.Certificate{c}, nil); r.Err != nil || len(r.Present) != 1 || len(rec.calls) != 1 {
		t.Fatalf("install of a root the system store put there: %+v, calls %v", r, rec.calls)
	}
	if r := Change(ctx, s, nil, func(fp string) bool { return fp == Fingerprint(c) }); r.Err == nil ||
		!strings.Contains(r.Err.Error(), "--system") || len(rec.calls) != 2 {
		t.Fatalf("uninstall of the system store's root: %+v, calls %v", r, rec.calls)
	}
	b := newRoot(t, "B")
	if r := Change(ctx, s, []*x509.Certificate{b}, nil); r.Err != nil {
		t.Fatalf("install: %+v", r)
	}
	for _, c := range rec.calls {
		if strings.Contains(c.String(), "s3cret-pass") {
			t.Fatalf("the keystore password is on a command line: %s", c)
		}
		if !contains(c.env, storepassEnv+"=s3cret-pass") || !contains(c.args, "-storepass:env") {
			t.Fatalf("keytool does not get the password from its environment: %s", c)
		}
	}
	last := rec.calls[len(rec.calls)-1]
	if !contains(last.args, "-importcert") || !contains(last.args, EntryName(Fingerprint(b))) || !bytes.Equal(last.stdin, encodePEM(b)) {
		t.Fatalf("import: %s", last)
	}
}

func TestParseCertutilList(t *testing.T) {
	fp := Fingerprint(newRoot(t, "A"))
	out := "\nCertificate Nickname                                         Trust Attributes\n" +
		"                                                             SSL,S/MIME,JAR/XPI\n\n" +
		EntryName(fp) + " C,,  \n" +
		"mkcert development CA 1234                                   C,,  \n"
	got := parseCertutilList([]byte(out))
	if len(got) != 1 || got[0] != EntryName(fp) {
		t.Fatalf("nicknames: %q", got)
	}
}

// On Debian a removed root's links and the hooks' copies are taken out as
// update-ca-certificates would for a root it removes; others stay.
func TestSystemStoreDebianRemoval(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	local, certs, hooks := filepath.Join(base, "local"), filepath.Join(base, "certs"), filepath.Join(base, "hooks")
	for _, d := range []string{local, certs, hooks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"jks-keystore", "README.txt"} {
		if err := os.WriteFile(filepath.Join(hooks, h), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	s := &SystemStore{run: rec.run, flavor: systemFlavor{dir: local, ext: ".crt",
		update: []string{"update-ca-certificates"}, certsDir: certs, hooksDir: hooks}}
	a := newRoot(t, "A")
	fp := Fingerprint(a)
	if r := Change(ctx, s, []*x509.Certificate{a}, nil); r.Err != nil {
		t.Fatal(r.Err)
	}
	// What update-ca-certificates would have linked, and others' links.
	pem := EntryName(fp) + ".pem"
	links := map[string]string{pem: s.path(fp), "f980d826.0": pem, "other.pem": "/usr/share/x.crt", "1111aaaa.0": "other.pem"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(certs, name)); err != nil {
			t.Fatal(err)
		}
	}
	rec.calls = nil
	if r := Change(ctx, s, nil, func(string) bool { return true }); r.Err != nil || len(r.Removed) != 1 {
		t.Fatalf("uninstall: %+v", r)
	}
	left, _ := filepath.Glob(filepath.Join(certs, "*"))
	if len(left) != 2 || !contains(left, filepath.Join(certs, "other.pem")) || !contains(left, filepath.Join(certs, "1111aaaa.0")) {
		t.Fatalf("links left: %v", left)
	}
	if len(rec.calls) != 2 || rec.calls[0].String() != "update-ca-certificates" ||
		rec.calls[1].String() != filepath.Join(hooks, "jks-keystore") ||
		string(rec.calls[1].stdin) != "-"+filepath.Join(certs, pem)+"\n" {
		t.Fatalf("calls: %v, hook stdin %q", rec.calls, rec.calls[len(rec.calls)-1].stdin)
	}
}
