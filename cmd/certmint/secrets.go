package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Secrets reach certmint through the environment or files, never argv
// (`ps` shows argv to every user). Files are what container platforms hand
// out (compose and Swarm secrets, Kubernetes secret volumes), so each
// secret that has an environment variable also takes a file, by the
// _FILE convention of the official Docker images (POSTGRES_PASSWORD_FILE):
// the same secret file can serve Postgres and certmint.
const (
	// envCAPassphrase encrypts the CA keys at rest (files and database).
	envCAPassphrase = "CERTMINT_CA_PASSPHRASE"
	// envCAPassphraseFile names a file holding that passphrase instead.
	envCAPassphraseFile = "CERTMINT_CA_PASSPHRASE_FILE"
	// dbPasswordFileFlag is added next to every --db flag: the Postgres
	// password, so the URL on the command line carries none.
	dbPasswordFileFlag = "db-password-file"
)

// envOnly lists the settings that are environment variables and not
// flags, for the configuration reference (docs/configuration.md).
var envOnly = []struct{ Name, Help string }{
	{envCAPassphrase, "passphrase that encrypts the CA keys at rest (Argon2id + AES-256-GCM), in DATA/ca, in the database and in backups; set it before the first start and on every start after, on every replica"},
	{envCAPassphraseFile, "file whose content (one line; the trailing newline is dropped) is " + envCAPassphrase + ", e.g. a compose secret /run/secrets/ca-passphrase; give one of the two"},
	{"CERTMINT_PKCS11_PIN", "user PIN of the PKCS#11 token when the key URI has no pin-source"},
	{"GOGC", "Go's garbage collector target; serve and bench use 400 unless it is set"},
}

// maxSecretFile bounds what a secret file may hold; a passphrase or a
// password is a line, not a megabyte.
const maxSecretFile = 64 << 10

// readSecretFile returns the one line a secret file holds, without its
// trailing newline (as `$(< file)` in the Docker images' entrypoints
// reads it, so one file serves both). Errors name the file, never the
// content.
func readSecretFile(what, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", usagef("cannot read %s %s: %v", what, path, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", usagef("cannot read %s %s: %v", what, path, err)
	}
	if len(data) > maxSecretFile {
		return "", usagef("%s %s is larger than %d bytes; it must hold one line", what, path, maxSecretFile)
	}
	s := strings.TrimRight(string(data), "\r\n")
	switch {
	case s == "":
		return "", usagef("%s %s is empty", what, path)
	case strings.ContainsAny(s, "\r\n"):
		return "", usagef("%s %s must hold one line", what, path)
	}
	return s, nil
}

// caPassphrase is the CA passphrase from CERTMINT_CA_PASSPHRASE or the
// file CERTMINT_CA_PASSPHRASE_FILE names; nil when neither is set.
func caPassphrase() ([]byte, error) {
	direct, file := os.Getenv(envCAPassphrase), os.Getenv(envCAPassphraseFile)
	switch {
	case direct != "" && file != "":
		return nil, usagef("set only one of %s and %s", envCAPassphrase, envCAPassphraseFile)
	case file != "":
		p, err := readSecretFile(envCAPassphraseFile, file)
		if err != nil {
			return nil, err
		}
		return []byte(p), nil
	case direct != "":
		return []byte(direct), nil
	}
	return nil, nil
}

// addDBPasswordFlags gives every command that has --db a
// --db-password-file beside it (persistent where --db is), so the rule
// holds for commands added later too.
func addDBPasswordFlags(c *cobra.Command) {
	const help = "`FILE` holding the password of the --db Postgres user (one line), so the URL carries none; e.g. a compose secret"
	switch {
	case c.PersistentFlags().Lookup("db") != nil:
		c.PersistentFlags().String(dbPasswordFileFlag, "", help)
	case c.Flags().Lookup("db") != nil:
		c.Flags().String(dbPasswordFileFlag, "", help)
	}
	for _, sub := range c.Commands() {
		addDBPasswordFlags(sub)
	}
}

// applyDBPassword puts the password of --db-password-file into the --db
// URL, once flags, environment and file are applied. The URL then holds
// it in memory only; messages print it through redactDSN.
func applyDBPassword(fs *pflag.FlagSet) error {
	pwFlag, dbFlag := fs.Lookup(dbPasswordFileFlag), fs.Lookup("db")
	if pwFlag == nil || dbFlag == nil || pwFlag.Value.String() == "" {
		return nil
	}
	path, dsn := pwFlag.Value.String(), dbFlag.Value.String()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return usagef("--%s needs --db postgres://USER@HOST:5432/DB, got %q", dbPasswordFileFlag, redactDSN(dsn))
	}
	if _, has := u.User.Password(); has {
		return usagef("--db already holds a password and --%s gives another; leave it out of the URL (postgres://USER@HOST:5432/DB)", dbPasswordFileFlag)
	}
	pw, err := readSecretFile("--"+dbPasswordFileFlag, path)
	if err != nil {
		return err
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	if err := dbFlag.Value.Set(u.String()); err != nil {
		return fmt.Errorf("set --db: %w", err)
	}
	return nil
}
