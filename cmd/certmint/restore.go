package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/storage"
)

// `certmint restore` loads a backup into an empty target of either
// engine: the way back after a lost disk, and the way from SQLite to
// Postgres. Everything that can be refused is refused before a byte is
// written, and storage makes the load all or nothing.

func newRestoreCmd() *cobra.Command {
	var (
		target adminTarget
		in     string
	)
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Load a backup into an empty database (SQLite in --data, or --db), either engine",
		Long: "Load a backup made by `certmint backup` into an empty target: a new --data directory (SQLite)\n" +
			"or an empty Postgres database (--db). A backup from SQLite restores into Postgres and back:\n" +
			"this is how a deployment moves from SQLite to Postgres. Encrypted CA keys need\n" +
			"CERTMINT_CA_PASSPHRASE, checked before anything is written. See docs/backup.md.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd, target, in)
		},
	}
	target.flagsOn(cmd.Flags())
	cmd.Flags().StringVar(&in, "in", "", "the backup `FILE` to restore")
	return cmd
}

func runRestore(cmd *cobra.Command, target adminTarget, in string) (err error) {
	if in == "" {
		return usagef("restore needs --in FILE: the backup to restore")
	}
	f, err := os.Open(in)
	if err != nil {
		return usagef("cannot read the backup --in %s: %v", in, errors.Unwrap(err))
	}
	defer f.Close()
	dsn, err := target.dsn()
	if err != nil {
		return err
	}
	if !isPostgres(dsn) {
		undo, perr := prepareSQLiteTarget(target, strings.TrimPrefix(dsn, "sqlite:"))
		if perr != nil {
			return perr
		}
		defer func() { undo(err != nil) }() // err: the named result
	}
	passphrase, err := caPassphrase()
	if err != nil {
		return err
	}
	var tokens []string
	start := time.Now()
	ctx, stop := interruptible(cmd)
	defer stop()
	res, err := storage.Restore(ctx, dsn, bufio.NewReaderSize(f, 1<<20), storage.RestoreOptions{
		CheckIssuers: func(recs []ca.IssuerRecord) error {
			if len(recs) == 0 {
				return usagef("the backup %s holds no CA; a server cannot start from it", in)
			}
			if err := ca.CheckKeys(recs, passphrase); err != nil {
				if errors.Is(err, ca.ErrBadPassphrase) {
					return badPassphrase("the backup's", "set the passphrase the backed-up servers used, or the one the backup was made with")
				}
				return usagef("the backup's CA keys do not open: %v", err)
			}
			for _, r := range recs {
				if r.KeyStorage() == ca.KeyToken && r.State != ca.StateRetired {
					tokens = append(tokens, r.KeyRef)
				}
			}
			return nil
		},
		Progress: progressTo(cmd.ErrOrStderr(), "restore"),
	})
	if err != nil {
		if ue := backupInputError(in, err); ue != nil {
			return ue
		}
		return fmt.Errorf("restore into %s failed, nothing was written: %w", target.describe(), err)
	}
	m := res.Manifest
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "restored %s (%s backup of %s, schema %s) into %s: %d tables, %d rows in %s\n",
		in, m.Engine, m.Created.Format(time.RFC3339), m.Schema, target.describe(), len(m.Tables), rows, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "CRL numbers continue above %d; nonces, console sessions and leases from before the restore are void\n", res.CRLNumberFloor)
	for _, uri := range tokens {
		fmt.Fprintf(out, "a CA key stays in its PKCS#11 token (%s): give the server that token and its PIN\n", uri)
	}
	serve := "certmint serve --data " + target.data
	if target.db != "" {
		serve = "certmint serve --db " + redactDSN(target.db) + " --data DIR"
	}
	fmt.Fprintf(out, "start it with: %s (and CERTMINT_CA_PASSPHRASE if its keys are encrypted)\n", serve)
	return nil
}

// prepareSQLiteTarget makes the directory of a SQLite restore and takes
// the server's lock on the database, so no server starts on it halfway.
// A data directory whose ca/ holds a CA is refused: the restored database
// brings its own CA, and a server refuses a directory with another root.
// undo(failed) releases the lock and, after a failure, removes what this
// made, so a failed restore leaves the target as it was.
func prepareSQLiteTarget(target adminTarget, path string) (undo func(failed bool), err error) {
	dir := filepath.Dir(path)
	if target.db == "" {
		if has, _ := ca.Holds(filepath.Join(dir, "ca")); has {
			return nil, usagef("--data %s already holds a CA in %s; restore into an empty --data directory (the CA comes from the backup)", dir, filepath.Join(dir, "ca"))
		}
	}
	created := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, usagef("cannot create the data directory %s: %v", dir, errors.Unwrap(err))
		}
		created = true
	}
	_, lockErr := os.Stat(path + ".lock")
	lockExisted := lockErr == nil
	lock, err := lockSQLite(path)
	if err != nil {
		if created {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	return func(failed bool) {
		lock.Close()
		switch {
		case failed && created:
			os.RemoveAll(dir)
		case failed && !lockExisted:
			os.Remove(path + ".lock")
		}
	}, nil
}
