package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/internal/auditchain"
	"github.com/certmint/certmint/storage"
)

func init() { extraCommands = append(extraCommands, newAuditCmd) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the sealed audit log",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("audit needs a subcommand: verify (see --help)")
		},
	}
	var t adminTarget
	t.flags(cmd)
	cmd.AddCommand(newAuditVerifyCmd(&t))
	return cmd
}

// anchorRE is one --anchor value: a seal number and its hash.
var anchorRE = regexp.MustCompile(`^([1-9][0-9]*):([0-9a-f]{64})$`)

func newAuditVerifyCmd(t *adminTarget) *cobra.Command {
	var anchors []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 naming the first entry changed, deleted or inserted",
		Long: `Recompute the hash chain over the audit log from its first seal and compare
every sealed entry with its seal. Exit 0 when the chain is intact, 1 naming
the first entry that was changed, deleted or inserted (or the seal that was),
2 on bad usage. Entries too recent to be sealed are counted, not failed.
With CERTMINT_CA_PASSPHRASE set, each seal's MAC is checked as well.
--anchor SEQ:HASH checks a seal hash recorded elsewhere (the server logs
each seal's hash), which also catches seals deleted from the end.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := auditchain.Options{Anchors: map[int64]string{}}
			for _, a := range anchors {
				m := anchorRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(a)))
				if m == nil {
					return usagef("--anchor %q must be SEQ:HASH, a seal number and its 64-hex-digit hash (as the server logs them)", a)
				}
				seq, _ := strconv.ParseInt(m[1], 10, 64)
				opts.Anchors[seq] = m[2]
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if p := os.Getenv("CERTMINT_CA_PASSPHRASE"); p != "" {
				opts.Key, err = auditchain.VerifyKey(cmd.Context(), st, []byte(p))
				switch {
				case errors.Is(err, storage.ErrNotFound):
					opts.SaltMissing = true
				case err != nil:
					return err
				}
			}
			rep, err := auditchain.Verify(cmd.Context(), st, opts)
			if err != nil {
				return fmt.Errorf("verify the audit chain: %w", err)
			}
			printAuditReport(cmd.OutOrStdout(), rep)
			if !rep.OK() {
				return fmt.Errorf("the audit log was tampered with: %s (problems in all: %d)", rep.First, rep.Problems)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&anchors, "anchor", nil, "SEQ:HASH of a seal recorded outside the database (repeatable)")
	return cmd
}

// printAuditReport writes what Verify found, for a person and for grep.
func printAuditReport(w io.Writer, r auditchain.Report) {
	covered := fmt.Sprintf("%s covering %s", count(int64(r.Seals), "seal", "seals"), count(r.Covered, "entry", "entries"))
	if r.OK() {
		fmt.Fprintf(w, "audit chain intact: %s\n", covered)
	} else {
		fmt.Fprintf(w, "audit chain BROKEN: %s\n", r.First)
		fmt.Fprintf(w, "problems in all: %d, in %s\n", r.Problems, covered)
	}
	if r.Last != nil {
		fmt.Fprintf(w, "last seal: %d at %s, %s, hash %s\n", r.Last.Seq, r.Last.SealedAt.UTC().Format(time.RFC3339),
			count(int64(r.Last.Count), "entry", "entries"), r.Last.Hash)
	} else {
		fmt.Fprintln(w, "no seal yet")
	}
	fmt.Fprintf(w, "not yet sealed: %d newer entries (sealed once older than the server's --audit-seal-settle)\n", r.Unsealed)
	switch {
	case r.Keyed == 0:
		fmt.Fprintln(w, "seals are unkeyed (the server has no CERTMINT_CA_PASSPHRASE): a plain hash chain")
	case r.MACsChecked:
		fmt.Fprintf(w, "MACs checked: %d of %d seals are keyed\n", r.Keyed, r.Seals)
	default:
		fmt.Fprintf(w, "MACs not checked: %d seals are keyed; set CERTMINT_CA_PASSPHRASE to check them\n", r.Keyed)
	}
}

// count is n with its noun, singular or plural.
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
