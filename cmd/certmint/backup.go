package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/certmint/certmint/storage"
)

// `certmint backup` writes one consistent snapshot of the whole database
// to a file while servers keep running; `backup verify` checks a file and
// says what it holds. The format is storage's (backupfile.go); what is
// decided here is the operator's side: which database, the rule on
// unencrypted keys, and what gets printed. docs/backup.md is the guide.

func init() { extraCommands = append(extraCommands, newBackupCmd, newRestoreCmd) }

// dsn is the database named by --data or --db, as serve means them: --db,
// or the SQLite file in --data. The password of a --db URL never appears
// in a message (redactDSN).
func (t *adminTarget) dsn() (string, error) {
	if t.db != "" {
		if !isPostgres(t.db) && !strings.HasPrefix(t.db, "sqlite:") {
			return "", usagef("--db %q is not a database URL; use postgres://user:pass@host:5432/db or sqlite:/path/file.db", redactDSN(t.db))
		}
		return t.db, nil
	}
	return filepath.Join(t.data, "certmint.db"), nil
}

func newBackupCmd() *cobra.Command {
	var (
		target     adminTarget
		out        string
		allowPlain bool
	)
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write one consistent snapshot of the database and its CA keys to FILE (online)",
		Long: "Write one consistent snapshot of every table of the database to FILE (mode 0600), while servers\n" +
			"keep running. Encrypted CA keys go in as the database keeps them. Keys stored unencrypted go in\n" +
			"encrypted under CERTMINT_CA_PASSPHRASE when it is set (which must then open the encrypted ones);\n" +
			"without it, the backup is refused unless --allow-unencrypted-keys. See docs/backup.md.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBackup(cmd, target, out, allowPlain)
		},
	}
	target.flagsOn(cmd.Flags())
	cmd.Flags().StringVar(&out, "out", "", "the backup `FILE` to write (replaced atomically)")
	cmd.Flags().BoolVar(&allowPlain, "allow-unencrypted-keys", false, "without CERTMINT_CA_PASSPHRASE, back up CA keys the database keeps unencrypted (the file then holds them in the clear)")
	cmd.AddCommand(newBackupVerifyCmd())
	return cmd
}

func runBackup(cmd *cobra.Command, target adminTarget, out string, allowPlain bool) error {
	if out == "" {
		return usagef("backup needs --out FILE: where to write the backup")
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return usagef("--out %s is a directory; give the backup file's name", out)
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
		return usagef("--out %s: the directory %s does not exist", out, filepath.Dir(out))
	}
	dsn, err := target.dsn()
	if err != nil {
		return err
	}
	passphrase, err := caPassphrase()
	if err != nil {
		return err
	}
	ctx, stop := interruptible(cmd)
	defer stop()
	snap, err := storage.OpenSnapshot(ctx, dsn)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return usagef("no database at %s; give the --data directory of a server that ran, or --db", dsn)
	case err != nil:
		return usagef("cannot open the database %s: %v", target.describe(), err)
	}
	defer snap.Close()
	issuers, err := snap.Issuers()
	if err != nil {
		return err
	}
	sealed, err := backupKeys(issuers, passphrase, allowPlain)
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(out, 0o600)
	if err != nil {
		return usagef("cannot write --out %s: %v", out, errors.Unwrap(err))
	}
	start := time.Now()
	w := bufio.NewWriterSize(f, 1<<20)
	stderr := cmd.ErrOrStderr()
	m, err := snap.Write(ctx, w, storage.WriteOptions{Version: version, Progress: progressTo(stderr, "backup"), KeyPEM: sealed})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Abort()
		return fmt.Errorf("backup of %s failed, nothing written to %s: %w", target.describe(), out, err)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	size := int64(0)
	if st, err := os.Stat(out); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(cmd.OutOrStdout(), "backup of %s written to %s: %d tables, %d rows, schema %s, %s in %s\n",
		m.Engine, out, len(m.Tables), rows, m.Schema, byteSize(size), time.Since(start).Round(time.Millisecond))
	if len(sealed) > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "%d CA keys stored unencrypted went in encrypted under %s: the restore and every server on the restored data need it\n",
			len(sealed), envCAPassphrase)
	}
	return nil
}

// interruptible is the command's context, cancelled by SIGINT or SIGTERM
// (Ctrl-C, a cron or systemd timeout). Without it the signal kills the
// process mid-write and the temporary file, which holds CA keys, stays
// beside --out (or beside the restored database); cancelled, the
// command's own failure path removes it.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
}

// backupKeys applies the passphrase rule and returns the key PEMs the
// backup writes in place of the stored ones. With CERTMINT_CA_PASSPHRASE
// set, a CA key kept in the clear goes in sealed under it, as a server
// with that passphrase stores keys; keys already encrypted go as stored,
// and the passphrase must open them, or the restore would need two.
// Without a passphrase, a key kept in the clear goes in only when the
// operator says so, since the file then is as secret as the key. A key
// in a file of DATA/ca (a CA the database has not recorded) cannot go in
// at all.
func backupKeys(issuers []ca.IssuerRecord, passphrase []byte, allowPlain bool) (map[string][]byte, error) {
	if len(issuers) == 0 {
		return nil, usagef("the database records no CA yet; start `certmint serve` on it once (it records the CA of --data there), then back it up")
	}
	for _, r := range issuers {
		switch r.KeyStorage() {
		case ca.KeyPlain:
			if len(passphrase) == 0 && !allowPlain {
				return nil, usagef("the %s key %s is stored unencrypted (the server ran without %s), so the backup would hold it in the clear; set %s (or %s) to back it up encrypted, or pass --allow-unencrypted-keys to back it up anyway and guard the file like the key",
					r.Role, r.ID, envCAPassphrase, envCAPassphrase, envCAPassphraseFile)
			}
		case ca.KeyFile:
			return nil, usagef("the %s key %s is a file in the CA directory, which a backup does not carry; start `certmint serve` once so the database records it", r.Role, r.ID)
		}
	}
	if len(passphrase) == 0 {
		return nil, nil
	}
	if err := ca.CheckKeys(issuers, passphrase); err != nil {
		if errors.Is(err, ca.ErrBadPassphrase) {
			return nil, badPassphrase("the database's", "set the passphrase its servers use, or unset it to back the keys up as stored")
		}
		return nil, usagef("the database's CA keys do not open: %v", err)
	}
	sealed, err := ca.SealKeys(issuers, passphrase)
	if err != nil {
		return nil, err
	}
	keys := map[string][]byte{}
	for i, r := range issuers {
		if r.KeyStorage() == ca.KeyPlain {
			keys[r.ID] = sealed[i].KeyPEM
		}
	}
	return keys, nil
}

// badPassphrase is the one line of backup and restore when
// CERTMINT_CA_PASSPHRASE does not open encrypted CA keys; whose names the
// keys, fix says what to do.
func badPassphrase(whose, fix string) error {
	return usagef("%s CA keys are encrypted and %s is missing or wrong; %s", whose, envCAPassphrase, fix)
}

// progressTo reports on w, as a backup or restore goes, the rows of each
// large table: every 100,000 rows and at its end. Small tables pass in
// silence: a database of a few thousand rows takes a second and needs no
// narration, and a refusal then stays the one line it should be.
func progressTo(w io.Writer, verb string) func(string, int64, bool) {
	return func(table string, rows int64, done bool) {
		switch {
		case done && rows >= largeTable:
			fmt.Fprintf(w, "%s: %s: %d rows, done\n", verb, table, rows)
		case !done:
			fmt.Fprintf(w, "%s: %s: %d rows…\n", verb, table, rows)
		}
	}
}

// largeTable is where a table starts to get progress lines: storage
// reports every 100,000 rows.
const largeTable = 100_000

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func newBackupVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a backup's manifest and every checksum, and print what it holds",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("backup verify needs one backup FILE, got %d arguments", len(args))
			}
			return runBackupVerify(cmd, args[0])
		},
	}
}

func runBackupVerify(cmd *cobra.Command, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return usagef("cannot read the backup %s: %v", file, errors.Unwrap(err))
	}
	defer f.Close()
	m, err := storage.VerifyBackup(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		if ue := backupInputError(file, err); ue != nil {
			return ue
		}
		return err
	}
	printManifest(cmd.OutOrStdout(), file, m)
	return nil
}

// backupInputError turns what storage says about a bad backup or target
// into the one-line usage error (exit 2); nil for other failures, which
// stay runtime errors.
func backupInputError(file string, err error) error {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.Is(err, storage.ErrBackupDamaged):
		return usagef("%s: %v; use another backup", file, err)
	case errors.Is(err, storage.ErrTargetNotEmpty):
		return usagef("%s: %v; restore only goes into an empty target: a new --data directory or a new Postgres database", file, err)
	case errors.Is(err, storage.ErrBackupNewer), errors.Is(err, storage.ErrBackupUnmappable):
		return usagef("%s: %v", file, err)
	}
	return nil
}

func printManifest(w io.Writer, file string, m *storage.Manifest) {
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	fmt.Fprintf(w, "%s: intact, every checksum matches\n", file)
	fmt.Fprintf(w, "  made          %s by certmint %s, from %s\n", m.Created.Format(time.RFC3339), m.Certmint, m.Engine)
	fmt.Fprintf(w, "  schema        %s (%d migrations)\n", m.Schema, len(m.Migrations))
	if unknown := storage.UnknownMigrations(m.Migrations); len(unknown) > 0 {
		fmt.Fprintf(w, "                newer than this certmint (%s): restore it with certmint %s or newer\n", strings.Join(unknown, ", "), m.Certmint)
	}
	fmt.Fprintf(w, "  tables        %d, %d rows\n", len(m.Tables), rows)
	fmt.Fprintf(w, "  accounts      %d\n", m.Rows("accounts"))
	newest := "none"
	if m.Summary.NewestCertificate != nil {
		newest = "newest issued " + m.Summary.NewestCertificate.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  certificates  %d (%s)\n", m.Rows("certificates"), newest)
	fmt.Fprintf(w, "  issuers       %d\n", len(m.Summary.Issuers))
	issuers := slices.Clone(m.Summary.Issuers)
	slices.SortStableFunc(issuers, func(a, b storage.BackupIssuer) int { return strings.Compare(b.Role, a.Role) }) // roots first
	for _, iss := range issuers {
		until := ""
		if iss.NotAfter != nil {
			until = ", until " + iss.NotAfter.Format("2006-01-02")
		}
		fmt.Fprintf(w, "    %-12s %-8s %s %q%s\n", iss.Role, iss.State, shortID(iss.ID), iss.Subject, until)
		fmt.Fprintf(w, "                 key: %s\n", describeKeyStorage(iss))
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// describeKeyStorage says where an issuer's key is and what a restore
// needs to use it.
func describeKeyStorage(iss storage.BackupIssuer) string {
	switch iss.Key {
	case ca.KeyEncrypted:
		return "in the backup, encrypted (the restore needs CERTMINT_CA_PASSPHRASE)"
	case ca.KeyPlain:
		return "in the backup, NOT encrypted (the file is as secret as the key)"
	case ca.KeyToken:
		return "in a PKCS#11 token, not in the backup: " + iss.KeyURI + " (the restored server needs that token and its PIN)"
	case ca.KeyOffline:
		return "offline, not in the backup (kept by the operator)"
	}
	return string(iss.Key)
}
