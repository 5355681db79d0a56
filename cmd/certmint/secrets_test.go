package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
)

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCAPassphrase(t *testing.T) {
	for _, tc := range []struct {
		name, direct, file string // file: content; "-" for a missing file
		want               string
		wantErr            string
	}{
		{name: "ok/none"},
		{name: "ok/env", direct: "from-env", want: "from-env"},
		{name: "ok/file", file: "from-file\n", want: "from-file"},
		{name: "ok/file-crlf", file: "from-file\r\n", want: "from-file"},
		{name: "ok/file-spaces-kept", file: " a b \n", want: " a b "},
		{name: "fail/both", direct: "x", file: "y\n", wantErr: "set only one of CERTMINT_CA_PASSPHRASE and CERTMINT_CA_PASSPHRASE_FILE"},
		{name: "fail/missing-file", file: "-", wantErr: "cannot read CERTMINT_CA_PASSPHRASE_FILE"},
		{name: "fail/empty-file", file: "\n", wantErr: "is empty"},
		{name: "fail/two-lines", file: "a\nb\n", wantErr: "must hold one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envCAPassphrase, tc.direct)
			path := ""
			switch tc.file {
			case "":
			case "-":
				path = filepath.Join(t.TempDir(), "none")
			default:
				path = writeSecret(t, tc.file)
			}
			t.Setenv(envCAPassphraseFile, path)
			got, err := caPassphrase()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, ok := err.(*usageError); !ok {
					t.Errorf("err is %T, want a usage error (exit 2)", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("caPassphrase() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSecretFileErrorsHideContent: what a secret file holds never shows
// in a message, even when the file is refused.
func TestSecretFileErrorsHideContent(t *testing.T) {
	const secret = "s3cr3t-line-one"
	path := writeSecret(t, secret+"\nsecond line\n")
	_, err := readSecretFile("--db-password-file", path)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v; want one naming the file and not its content", err)
	}
}

// TestDBPasswordFileEveryDBFlag: each command that takes --db also takes
// --db-password-file, and nothing else gets it.
func TestDBPasswordFileEveryDBFlag(t *testing.T) {
	var withDB int
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		fs := c.Flags()
		fs.AddFlagSet(c.InheritedFlags())
		hasDB, hasPW := fs.Lookup("db") != nil, fs.Lookup(dbPasswordFileFlag) != nil
		if hasDB {
			withDB++
		}
		if hasDB != hasPW {
			t.Errorf("%s: --db %v but --%s %v", c.CommandPath(), hasDB, dbPasswordFileFlag, hasPW)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	if withDB < 4 { // serve, ca root, ca import-intermediate, admin ...
		t.Errorf("found --db on %d commands; the walk missed some", withDB)
	}
}

// TestDBPasswordFile: the password of the file reaches the Postgres
// driver exactly (as pgx parses the URL), whatever characters it holds,
// from the flag or from CERTMINT_DB_PASSWORD_FILE; a URL that holds a
// password already, or is not Postgres, is refused with exit 2.
func TestDBPasswordFile(t *testing.T) {
	const pw = "p@ss:w/rd%20?#x"
	file := writeSecret(t, pw+"\n")
	for _, tc := range []struct {
		name    string
		args    []string
		env     string
		wantErr string
	}{
		{name: "ok/flag", args: []string{"--db", "postgres://certmint@db.internal:5432/certmint?sslmode=disable", "--db-password-file", file}},
		{name: "ok/env", args: []string{"--db", "postgresql://certmint@db.internal/certmint"}, env: file},
		{name: "fail/password-twice", args: []string{"--db", "postgres://certmint:inline-pw-9@db.internal/certmint", "--db-password-file", file}, wantErr: "already holds a password"},
		{name: "fail/not-postgres", args: []string{"--db", "sqlite:/tmp/x.db", "--db-password-file", file}, wantErr: "needs --db postgres://"},
		{name: "fail/missing-file", args: []string{"--db", "postgres://certmint@db.internal/certmint", "--db-password-file", file + ".none"}, wantErr: "cannot read --db-password-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CERTMINT_DB_PASSWORD_FILE", tc.env)
			if tc.env == "" {
				os.Unsetenv("CERTMINT_DB_PASSWORD_FILE")
			}
			root := newRootCmd()
			serve, _, err := root.Find([]string{"serve"})
			if err != nil {
				t.Fatal(err)
			}
			if err := serve.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			err = applyConfig(serve)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "inline-pw-9") {
					t.Errorf("the message shows a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dsn := serve.Flags().Lookup("db").Value.String()
			cfg, err := pgconn.ParseConfig(dsn)
			if err != nil {
				t.Fatalf("pgx cannot parse %q: %v", redactDSN(dsn), err)
			}
			if cfg.Password != pw || cfg.User != "certmint" || cfg.Host != "db.internal" || cfg.Database != "certmint" {
				t.Errorf("pgx reads user %q password %q host %q db %q", cfg.User, cfg.Password, cfg.Host, cfg.Database)
			}
			if strings.Contains(redactDSN(dsn), "p@ss") || strings.Contains(redactDSN(dsn), "w%2Frd") {
				t.Errorf("redactDSN leaves the password in %q", redactDSN(dsn))
			}
		})
	}
}

// TestDBPasswordFileCommandLine: the real command line, end to end in
// one process: `certmint ca root --db URL --db-password-file FILE` gets
// as far as connecting (and fails to, the host does not exist), exit 1
// with the password nowhere in the message.
func TestDBPasswordFileCommandLine(t *testing.T) {
	const pw = "never-print-me-7"
	file := writeSecret(t, pw)
	var stderr bytes.Buffer
	root := newRootCmd()
	root.SetErr(&stderr)
	root.SetArgs([]string{"ca", "root", "--db", "postgres://certmint@127.0.0.1:1/certmint?sslmode=disable&connect_timeout=1", "--db-password-file", file})
	err := root.Execute()
	if err == nil {
		t.Fatal("ca root against a closed port succeeded")
	}
	if _, ok := err.(*usageError); ok {
		t.Fatalf("refused as bad usage, want a connection failure: %v", err)
	}
	if strings.Contains(err.Error()+stderr.String(), pw) {
		t.Fatalf("the password shows in %q", err.Error()+stderr.String())
	}
}
