package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certmint/certmint/tools/pgtest"
)

// TestSecretFilesReplicas runs two replicas on Postgres as
// docker-compose.yml does: the Postgres password from
// CERTMINT_DB_PASSWORD_FILE (the --db URL carries none) and the CA
// passphrase from CERTMINT_CA_PASSPHRASE_FILE. The second replica starts
// on an empty data directory, so it can sign only if the passphrase read
// from the file decrypts the key the first one stored in the database; a
// replica given another passphrase file is refused, exit 2. Neither
// secret is in any process's argv or environment, nor in the logs.
// `certmint ca root` with the same files prints the root, as the
// README's `docker compose exec` line does.
//
// The test cluster trusts every connection, so it cannot tell whether the
// password reached Postgres; TestDBPasswordFile (cmd/certmint) checks
// that the driver parses it from the URL exactly.
func TestSecretFilesReplicas(t *testing.T) {
	const password, passphrase = "pg-Pa55:w/rd-1c9", "ca-passphrase-from-a-file-7e2"
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	env := []string{
		"CERTMINT_CA_PASSPHRASE=",
		"CERTMINT_CA_PASSPHRASE_FILE=" + write("ca-passphrase", passphrase),
		"CERTMINT_DB_PASSWORD_FILE=" + write("pg-password", password),
	}
	dsn := pgtest.Start(t)
	a := StartServer(t, ServerOptions{DB: dsn, Env: env})
	if out, stderr, code := runCLI(t, env, "ca", "status", "--db", dsn); code != 0 || !strings.Contains(out, "encrypted with CERTMINT_CA_PASSPHRASE") {
		t.Fatalf("ca status: exit %d; want the CA keys encrypted under the passphrase file:\n%s%s", code, out, stderr)
	}
	obtainWithLegoClient(t, a, "a.secretfiles.test")

	b := startFromDatabase(t, a, ServerOptions{DB: dsn, Env: env})
	obtainWithLegoClient(t, b, "b.secretfiles.test")

	wrong := append(env[:1:1], "CERTMINT_CA_PASSPHRASE_FILE="+write("other", "another-passphrase"), env[2])
	_, stderr, code := runCLI(t, wrong, "serve", "--data", filepath.Join(t.TempDir(), "c"), "--db", dsn,
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", "")
	wantUsage(t, stderr, code, "CERTMINT_CA_PASSPHRASE")

	root, stderr, code := runCLI(t, env, "ca", "root", "--db", dsn)
	if code != 0 || root != string(a.RootPEM) || !strings.HasPrefix(stderr, "SHA256 fingerprint: ") {
		t.Errorf("ca root --db with CERTMINT_DB_PASSWORD_FILE: exit %d, stdout the root: %v, stderr %q", code, root == string(a.RootPEM), stderr)
	}

	for name, s := range map[string]*Server{"first": a, "second": b} {
		s.mu.Lock()
		pid := s.cmd.Process.Pid
		s.mu.Unlock()
		for _, f := range []string{"cmdline", "environ"} {
			seen, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(seen), password) || strings.Contains(string(seen), passphrase) {
				t.Errorf("the %s replica's /proc/%d/%s shows a secret", name, pid, f)
			}
		}
		if strings.Contains(s.Output(), password) || strings.Contains(s.Output(), passphrase) {
			t.Errorf("the %s replica's log shows a secret", name)
		}
	}
	if strings.Contains(stderr, password) {
		t.Error("ca root's stderr shows the password")
	}
}
