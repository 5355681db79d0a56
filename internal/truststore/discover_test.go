package truststore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fakeJDK lays out home/bin/keytool and home/lib/security/cacerts, the
// latter a symlink to cacerts when it is given (as Debian does).
func fakeJDK(t *testing.T, home, cacerts string) {
	t.Helper()
	for _, d := range []string{"bin", "lib/security"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "bin/keytool"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	ks := filepath.Join(home, "lib/security/cacerts")
	var err error
	if cacerts != "" {
		err = os.Symlink(cacerts, ks)
	} else {
		err = os.WriteFile(ks, nil, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	shared := filepath.Join(root, "etc-cacerts")
	if err := os.WriteFile(shared, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	jvm := filepath.Join(root, "jvm")
	fakeJDK(t, filepath.Join(jvm, "jdk-17"), shared)
	fakeJDK(t, filepath.Join(jvm, "jdk-25"), shared)
	fakeJDK(t, filepath.Join(jvm, "vendor-21"), "")
	home := filepath.Join(root, "home")
	for _, d := range []string{".pki/nssdb", ".mozilla/firefox/abc.default", ".mozilla/firefox/empty"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if d != ".mozilla/firefox/empty" {
			_ = os.WriteFile(filepath.Join(home, d, "cert9.db"), nil, 0o600)
		}
	}
	tools := map[string]bool{"update-ca-certificates": true, "certutil": true}
	env := Env{Home: home, JVMDir: jvm, LookPath: func(name string) (string, error) {
		if tools[name] {
			return "/usr/sbin/" + name, nil
		}
		return "", exec.ErrNotFound
	}}

	names := func(f Found) []string {
		var out []string
		for _, s := range f.Stores {
			out = append(out, s.Name())
		}
		return out
	}
	all := Find(Kinds{}, env)
	want := []string{"system /usr/local/share/ca-certificates", "java " + shared,
		"java " + filepath.Join(jvm, "vendor-21/lib/security/cacerts"),
		"nss " + filepath.Join(home, ".pki/nssdb"), "nss " + filepath.Join(home, ".mozilla/firefox/abc.default")}
	if got := names(all); len(got) != len(want) || len(all.Missing) != 0 {
		t.Fatalf("stores %q (missing %v), want %q", got, all.Missing, want)
	}
	for i := range want {
		if names(all)[i] != want[i] {
			t.Fatalf("store %d: %q, want %q", i, names(all)[i], want[i])
		}
	}

	env.JavaHome = filepath.Join(jvm, "vendor-21")
	if got := names(Find(Kinds{Java: true}, env)); len(got) != 1 || got[0] != want[2] {
		t.Fatalf("JAVA_HOME is the only JDK: %q", got)
	}

	// Named kinds that are not there fail; unnamed ones are skipped.
	delete(tools, "update-ca-certificates")
	delete(tools, "certutil")
	f := Find(Kinds{System: true, NSS: true}, env)
	if len(f.Stores) != 0 || len(f.Missing) != 2 || !errors.Is(f.Missing[0], ErrNotFound) {
		t.Fatalf("named but missing: %+v", f)
	}
	f = Find(Kinds{}, env)
	if len(f.Missing) != 0 || len(f.Notes) != 1 || len(f.Stores) != 1 {
		t.Fatalf("unnamed: %+v", f)
	}
}
