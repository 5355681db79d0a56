package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBackupFileChecks: the passphrase rule, and `backup verify` on a
// good, a truncated and an edited file.
func TestBackupFileChecks(t *testing.T) {
	// A server that ran without CERTMINT_CA_PASSPHRASE keeps its keys in
	// the clear: backing them up needs the operator's word.
	plain := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	out := filepath.Join(dir, "plain.backup")
	_, errOut, code := runCLI(t, nil, "backup", "--data", plain.Data, "--out", out)
	wantUsage(t, errOut, code, "--allow-unencrypted-keys")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused backup left %v", ents)
	}
	if _, errOut, code := runCLI(t, nil, "backup", "--data", plain.Data, "--out", out, "--allow-unencrypted-keys"); code != 0 {
		t.Fatalf("backup --allow-unencrypted-keys: exit %d: %s", code, errOut)
	}
	checkMode(t, out, 0o600)
	stdout, errOut, code := runCLI(t, nil, "backup", "verify", out)
	if code != 0 || !strings.Contains(stdout, "intact") || !strings.Contains(stdout, "NOT encrypted") {
		t.Fatalf("verify: exit %d: %s%s", code, stdout, errOut)
	}
	if raw, _ := os.ReadFile(out); !strings.Contains(gunzip(t, raw), "BEGIN PRIVATE KEY") {
		t.Fatal("the --allow-unencrypted-keys backup holds no key in the clear: the check below would prove nothing")
	}
	encryptedAtBackup(t, plain)

	// With the passphrase the keys are encrypted and the backup just works.
	s := StartServer(t, ServerOptions{Env: passEnv})
	obtainWithLego(t, s, "verify.backup.test")
	good := backupFile(t, s)
	wrong := filepath.Join(dir, "wrong.backup")
	_, errOut, code = runCLI(t, []string{"CERTMINT_CA_PASSPHRASE=not the passphrase"}, "backup", "--data", s.Data, "--out", wrong)
	wantUsage(t, errOut, code, "CERTMINT_CA_PASSPHRASE is missing or wrong")
	if _, err := os.Stat(wrong); !os.IsNotExist(err) {
		t.Fatalf("a backup refused for a wrong passphrase wrote %s", wrong)
	}
	stdout, errOut, code = runCLI(t, nil, "backup", "verify", good)
	t.Logf("backup verify:\n%s", stdout)
	for _, want := range []string{"intact", "certificates  1 (newest issued", "accounts      1", "root", "intermediate", "encrypted (the restore needs CERTMINT_CA_PASSPHRASE)", "schema"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("verify: exit %d, output lacks %q:\n%s%s", code, want, stdout, errOut)
		}
	}

	data, _ := os.ReadFile(good)
	bad := map[string][]byte{
		"truncated":    data[:len(data)*2/3],
		"flipped-byte": flipByte(data),
		"edited-row":   editBackup(t, data, func(s string) string { return strings.Replace(s, `"admin"`, `"mallory"`, 1) }),
	}
	for name, b := range bad {
		t.Run("verify/"+name, func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, "backup", "verify", writeTemp(t, b))
			wantUsage(t, errOut, code, "damaged")
		})
	}
	_, errOut, code = runCLI(t, nil, "backup", "verify", filepath.Join(dir, "missing.backup"))
	wantUsage(t, errOut, code, "cannot read")
}

// encryptedAtBackup: the backup of plain, a server that ran without a
// passphrase, given CERTMINT_CA_PASSPHRASE, needs no
// --allow-unencrypted-keys and holds the keys encrypted under it: verify
// says so, no key is in the clear in the file, the restore needs the
// passphrase, and a server on the restored data with it issues. Nothing
// printed holds the passphrase. Stops plain.
func encryptedAtBackup(t *testing.T, plain *Server) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sealed.backup")
	stdout, errOut, code := runCLI(t, passEnv, "backup", "--data", plain.Data, "--out", file)
	if code != 0 || !strings.Contains(stdout, "went in encrypted under CERTMINT_CA_PASSPHRASE") {
		t.Fatalf("backup with the passphrase of keys stored in the clear: exit %d\n%s%s", code, stdout, errOut)
	}
	printed := stdout + errOut
	stdout, errOut, code = runCLI(t, nil, "backup", "verify", file)
	printed += stdout + errOut
	if code != 0 || strings.Count(stdout, "key: in the backup, encrypted (the restore needs CERTMINT_CA_PASSPHRASE)") != 2 || strings.Contains(stdout, "NOT encrypted") {
		t.Fatalf("verify of the sealed backup: exit %d\n%s%s", code, stdout, errOut)
	}
	raw, _ := os.ReadFile(file)
	body := gunzip(t, raw)
	for _, pemType := range []string{"BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN RSA PRIVATE KEY"} {
		if strings.Contains(body, pemType) {
			t.Fatalf("the sealed backup holds %q", pemType)
		}
	}

	target, check := emptyTarget(t, "")
	_, errOut, code = runCLI(t, nil, append([]string{"restore", "--in", file}, target...)...)
	wantUsage(t, errOut, code, "CERTMINT_CA_PASSPHRASE is missing or wrong")
	check()
	stdout, errOut, code = runCLI(t, passEnv, append([]string{"restore", "--in", file}, target...)...)
	printed += stdout + errOut
	if code != 0 {
		t.Fatalf("restore with the passphrase: exit %d\n%s%s", code, stdout, errOut)
	}
	if strings.Contains(printed, testPassphrase) {
		t.Fatalf("the passphrase was printed:\n%s", printed)
	}
	plain.Stop()
	plain.opts.Env = passEnv
	moveServer(plain, target[1], "")
	obtainWithLego(t, plain, "sealed.backup.test")
}

// TestRestoreRefusals: every bad input of `certmint restore` is one line,
// exit 2, and the target stays empty, on SQLite and on Postgres.
func TestRestoreRefusals(t *testing.T) {
	s := StartServer(t, ServerOptions{Env: passEnv})
	s.Stop()
	good := backupFile(t, s)
	data, _ := os.ReadFile(good)

	// A database a newer certmint migrated: its backup has a migration
	// this binary does not know.
	newerData := filepath.Join(t.TempDir(), "newer")
	if out, err := exec.Command("cp", "-a", s.Data, newerData).CombinedOutput(); err != nil {
		t.Fatalf("copy data: %v: %s", err, out)
	}
	db, err := sql.Open("sqlite", filepath.Join(newerData, "certmint.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO migrations (id) VALUES ('9999_from_the_future')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	newer := filepath.Join(t.TempDir(), "newer.backup")
	if _, errOut, code := runCLI(t, nil, "backup", "--data", newerData, "--out", newer); code != 0 {
		t.Fatalf("backup of the newer database: %d %s", code, errOut)
	}

	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"missing-file", filepath.Join(t.TempDir(), "nope.backup"), passEnv, "cannot read the backup"},
		{"truncated", writeTemp(t, data[:len(data)/2]), passEnv, "damaged"},
		{"edited", writeTemp(t, editBackup(t, data, func(s string) string { return strings.Replace(s, `"admin"`, `"mallory"`, 1) })), passEnv, "damaged"},
		{"no-passphrase", good, nil, "CERTMINT_CA_PASSPHRASE is missing or wrong"},
		{"wrong-passphrase", good, []string{"CERTMINT_CA_PASSPHRASE=not the passphrase"}, "CERTMINT_CA_PASSPHRASE is missing or wrong"},
		{"newer-schema", newer, passEnv, "9999_from_the_future"},
		{"foreign-dialect", writeTemp(t, rewriteEngine(t, data, "mysql")), passEnv, `"mysql"`},
	}
	for engine, dsnOf := range engines(t) {
		for _, c := range cases {
			t.Run(engine+"/"+c.name, func(t *testing.T) {
				target, check := emptyTarget(t, dsnOf(t))
				_, errOut, code := runCLI(t, c.env, append([]string{"restore", "--in", c.file}, target...)...)
				wantUsage(t, errOut, code, c.want)
				check()
			})
		}
		t.Run(engine+"/not-empty", func(t *testing.T) {
			target, _ := emptyTarget(t, dsnOf(t))
			if _, errOut, code := runCLI(t, passEnv, append([]string{"restore", "--in", good}, target...)...); code != 0 {
				t.Fatalf("first restore: %d %s", code, errOut)
			}
			before := dumpTarget(t, target)
			_, errOut, code := runCLI(t, passEnv, append([]string{"restore", "--in", good}, target...)...)
			wantUsage(t, errOut, code, "not empty")
			if after := dumpTarget(t, target); after != before {
				t.Errorf("the refused restore changed the target:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// backupFile backs up s (encrypted keys) into a fresh file.
func backupFile(t *testing.T, s *Server) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "certmint.backup")
	if _, errOut, code := runCLI(t, nil, append([]string{"backup", "--out", file}, dbArgs(s)...)...); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	return file
}

// emptyTarget returns restore flags naming an empty target (a data
// directory that does not exist yet, or the empty Postgres database dsn)
// and a check that it is still empty.
func emptyTarget(t *testing.T, dsn string) ([]string, func()) {
	t.Helper()
	if dsn == "" {
		data := filepath.Join(t.TempDir(), "data")
		return []string{"--data", data}, func() {
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				ents, _ := os.ReadDir(data)
				t.Errorf("the refused restore left %s with %v", data, ents)
			}
		}
	}
	return []string{"--db", dsn}, func() {
		if tables := pgTables(t, dsn); len(tables) != 0 {
			t.Errorf("the refused restore left tables %v in the database", tables)
		}
	}
}

func pgTables(t *testing.T, dsn string) []string {
	t.Helper()
	conn := pgConnect(t, dsn)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

// dumpTarget summarizes a restored target: its accounts, certificates and
// admin users, enough to see any write.
func dumpTarget(t *testing.T, target []string) string {
	t.Helper()
	s := &Server{Data: target[1]}
	if target[0] == "--db" {
		s.opts.DB = target[1]
	}
	var parts []string
	for _, q := range []string{"SELECT COUNT(*) FROM accounts", "SELECT COUNT(*) FROM certificates", "SELECT COUNT(*) FROM admin_users", "SELECT COUNT(*) FROM migrations"} {
		var n int
		if err := openSQL(t, s).QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, strings.TrimPrefix(q, "SELECT COUNT(*) FROM ")+"="+itoa(n))
	}
	return strings.Join(parts, " ")
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.backup")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// flipByte damages one byte in the middle of the compressed file.
func flipByte(data []byte) []byte {
	b := bytes.Clone(data)
	b[len(b)/2] ^= 0x55
	return b
}

// editBackup changes the uncompressed text of a backup and compresses it
// again: what someone with zcat, an editor and gzip would do.
func editBackup(t *testing.T, data []byte, edit func(string) string) []byte {
	t.Helper()
	plain := gunzip(t, data)
	edited := edit(plain)
	if edited == plain {
		t.Fatal("the edit changed nothing")
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write([]byte(edited))
	zw.Close()
	return out.Bytes()
}

// rewriteEngine makes a well-formed backup that claims another database
// engine: header and manifest say engine, and every checksum is redone,
// so only the dialect is wrong.
func rewriteEngine(t *testing.T, data []byte, engine string) []byte {
	t.Helper()
	return editBackup(t, data, func(s string) string {
		lines := strings.SplitAfter(s, "\n")
		lines = lines[:len(lines)-1] // the empty string after the last newline
		var header map[string]map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &header); err != nil {
			t.Fatal(err)
		}
		header["header"]["engine"] = engine
		h, _ := json.Marshal(header)
		lines[0] = string(h) + "\n"
		body := strings.Join(lines[:len(lines)-1], "")
		sum := sha256.Sum256([]byte(body))
		var manifest map[string]map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &manifest); err != nil {
			t.Fatal(err)
		}
		manifest["manifest"]["engine"] = engine
		manifest["manifest"]["content_sha256"] = hex.EncodeToString(sum[:])
		m, _ := json.Marshal(manifest)
		return body + string(m) + "\n"
	})
}

// TestBackupKeysInToken: a CA whose keys are in a PKCS#11 token (SoftHSM2)
// backs up without --allow-unencrypted-keys, since no key is in the clear:
// the backup holds the keys' URIs and no key material, never the PIN, and
// verify says the keys stay in the token. The restore says the server
// needs the token, and a server on the restored database signs through it.
func TestBackupKeysInToken(t *testing.T) {
	env := softHSM(t)
	data := filepath.Join(t.TempDir(), "data")
	uri := "pkcs11:token=certmint;object=certmint-intermediate?module-path=" + softHSMModule + "&pin-source=file:" + pinFile(t, testPIN)
	if _, errOut, code := runCLI(t, env, "ca", "init", "--data", data, "--kms", uri); code != 0 {
		t.Fatalf("ca init --kms: %s", errOut)
	}
	s := StartServer(t, ServerOptions{Data: data, Env: env})
	file := backupFile(t, s)
	stdout, errOut, code := runCLI(t, nil, "backup", "verify", file)
	if code != 0 || strings.Count(stdout, "in a PKCS#11 token, not in the backup: pkcs11:token=certmint;object=certmint-") != 2 {
		t.Fatalf("verify does not say both keys stay in the token: exit %d\n%s%s", code, stdout, errOut)
	}
	raw, _ := os.ReadFile(file)
	plain := gunzip(t, raw)
	if strings.Contains(plain, "PRIVATE KEY") || strings.Contains(plain, testPIN) {
		t.Fatal("the backup holds key material or the PIN")
	}
	s.Stop()

	restored := filepath.Join(t.TempDir(), "restored")
	stdout, errOut, code = runCLI(t, env, "restore", "--in", file, "--data", restored)
	if code != 0 || !strings.Contains(stdout, "stays in its PKCS#11 token") {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, errOut)
	}
	moveServer(s, restored, "")
	obtainWithLego(t, s, "token.backup.test")
}

func gunzip(t *testing.T, data []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

// TestBackupInterrupted: Ctrl-C (or the SIGTERM of a cron or systemd
// timeout) in the middle of a backup leaves nothing beside --out: the
// temporary file holds the CA keys, and the command's failure path, not
// the signal's default, must remove it.
func TestBackupInterrupted(t *testing.T) {
	s := StartServer(t, ServerOptions{Env: passEnv})
	s.Stop()
	db, err := sql.Open("sqlite", filepath.Join(s.Data, "certmint.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Enough rows that the backup is still writing when the signal comes.
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
		INSERT INTO used_nonces (nonce, expires) SELECT printf('%064d', i), '2031-01-01 00:00:00+00:00' FROM n`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		dir := t.TempDir()
		cmd := exec.Command(binary, "backup", "--data", s.Data, "--out", filepath.Join(dir, "certmint.backup"))
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				break
			}
		}
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		ents, _ := os.ReadDir(dir)
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%v during the backup left %v beside --out (exit %d: %s)", sig, names, cmd.ProcessState.ExitCode(), errb.String())
		}
	}
}
