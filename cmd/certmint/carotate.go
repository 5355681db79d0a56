package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/kms"
	"github.com/certmint/certmint/internal/truststore"
	"github.com/certmint/certmint/storage"
)

// openIssuers opens the database of --data or --db and returns its
// issuers, recording those of --data first when the database has none
// (a server of an older version ran on it).
func openIssuers(ctx context.Context, t *adminTarget, pass []byte) (storage.Store, []ca.IssuerRecord, error) {
	st, err := t.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	recs, fromFiles, err := recordIssuers(ctx, st, t.data, pass, "", false, newLogger("warn"))
	if fromFiles != nil {
		fromFiles.Close()
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, recs, nil
}

func newCARotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the intermediate or the root; running servers use the new one within a minute",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("ca rotate needs what to rotate: intermediate or root")
		},
	}
	var t adminTarget
	t.flags(cmd)
	var kmsURI string
	cmd.PersistentFlags().StringVar(&kmsURI, "kms", "", "pkcs11: URI (RFC 7512) of the token to create the new keys in (default: where the keys they replace are); PIN from pin-source= or CERTMINT_PKCS11_PIN")
	checkKMS := func() error {
		if kmsURI == "" {
			return nil
		}
		if !kms.Available {
			return usagef("%v", kms.ErrNoPKCS11)
		}
		if _, err := kms.ParseURI(kmsURI); err != nil {
			return usagef("--kms: %v", err)
		}
		return nil
	}
	var csrOut string
	inter := &cobra.Command{
		Use:   "intermediate",
		Short: "New intermediate under the same root: active at once when the root key is at hand, else a CSR for the offline root",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkKMS(); err != nil {
				return err
			}
			ctx := cmd.Context()
			pass, err := caPassphrase()
			if err != nil {
				return err
			}
			st, recs, err := openIssuers(ctx, &t, pass)
			if err != nil {
				return err
			}
			defer st.Close()
			offline := rootOffline(recs)
			switch {
			case offline && csrOut == "":
				return usagef("the root key is offline: give --csr-out FILE, where certmint writes the new intermediate's CSR for the root to sign")
			case !offline && csrOut != "":
				return usagef("--csr-out is for an offline root; this CA holds its root key and signs the new intermediate itself")
			}
			var tmp *os.File
			if csrOut != "" { // fail on a bad path before anything is recorded
				if tmp, err = os.CreateTemp(filepath.Dir(csrOut), "."+filepath.Base(csrOut)+".tmp-"); err != nil {
					return usagef("cannot write the CSR next to %s: %v", csrOut, errors.Unwrap(err))
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
			}
			res, err := ca.RotateIntermediate(ctx, st, ca.RotateOptions{Passphrase: pass, KMS: kmsURI})
			if err != nil {
				return caError(err)
			}
			out := cmd.OutOrStdout()
			if res.CSR != nil {
				if _, err := tmp.Write(res.CSR); err != nil {
					return fmt.Errorf("write %s: %w", csrOut, err)
				}
				if err := os.Chmod(tmp.Name(), 0o644); err != nil {
					return err
				}
				if err := os.Rename(tmp.Name(), csrOut); err != nil {
					return fmt.Errorf("write %s: %w (the CSR is also shown by `certmint ca status` and the console)", csrOut, err)
				}
				fmt.Fprintf(out, "intermediate %s is pending; its CSR is in %s. Have the root sign it, then run: certmint ca import-intermediate %s FILE\n",
					res.Issuer.ID, csrOut, t.describe())
				return nil
			}
			fmt.Fprintf(out, "intermediate %s is active; the previous one is retiring (it keeps signing CRLs). Running servers switch within a minute.\n", res.Issuer.ID)
			return nil
		},
	}
	inter.Flags().StringVar(&csrOut, "csr-out", "", "with an offline root: where to write the new intermediate's CSR")
	var overlap time.Duration
	root := &cobra.Command{
		Use:   "root",
		Short: "New root and intermediate; both roots are published during --overlap, then issuance switches and the old root leaves the bundle",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if overlap < 0 {
				return usagef("--overlap %s must not be negative", overlap)
			}
			if err := checkKMS(); err != nil {
				return err
			}
			ctx := cmd.Context()
			pass, err := caPassphrase()
			if err != nil {
				return err
			}
			st, _, err := openIssuers(ctx, &t, pass)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := ca.RotateRoot(ctx, st, ca.RotateOptions{Passphrase: pass, Overlap: overlap, Immediate: overlap == 0, KMS: kmsURI})
			if err != nil {
				return caError(err)
			}
			at := res.Issuer.ActivateAt.UTC().Format(time.RFC3339)
			fmt.Fprintf(cmd.OutOrStdout(), "new root %s (SHA-256 %s) is in the bundle now; issuance switches to it at %s (earlier from the console's CA page)\n",
				res.Root.ID, fingerprint(firstDER(res.Root.CertPEM)), at)
			return nil
		},
	}
	root.Flags().DurationVar(&overlap, "overlap", ca.DefaultOverlap, "how long both roots are published before issuance switches (e.g. 720h; 0 switches now)")
	cmd.AddCommand(inter, root)
	return cmd
}

// rootOffline reports whether the active intermediate's root has no key
// recorded.
func rootOffline(recs []ca.IssuerRecord) bool {
	var parent string
	for _, r := range recs {
		if r.Role == ca.RoleIntermediate && r.State == ca.StateActive {
			parent = r.ParentID
		}
	}
	for _, r := range recs {
		if r.ID == parent {
			return r.KeyRef == ""
		}
	}
	return true
}

// parseCerts is every certificate of a PEM text (none when it holds no
// valid one).
func parseCerts(data []byte) []*x509.Certificate {
	certs, _ := truststore.ParseCerts(data)
	return certs
}

func firstDER(pemBytes []byte) []byte {
	if certs := parseCerts(pemBytes); len(certs) > 0 {
		return certs[0].Raw
	}
	return nil
}

func newCAStatusCmd() *cobra.Command {
	var t adminTarget
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The CA's issuers: states, validity, constraints, key location",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := caPassphrase()
			if err != nil {
				return err
			}
			st, recs, err := openIssuers(cmd.Context(), &t, pass)
			if err != nil {
				return err
			}
			defer st.Close()
			status := ca.Status(recs, time.Now(), "")
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(status)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tSTATE\tID\tSUBJECT\tNOT AFTER\tDAYS LEFT\tCONSTRAINTS\tKEY")
			for _, s := range status {
				na, state := "-", string(s.State)
				if s.NotAfter != nil {
					na = s.NotAfter.Format("2006-01-02")
				}
				if s.ActivateAt != nil && s.State == ca.StatePending {
					state += " until " + s.ActivateAt.Format("2006-01-02T15:04Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Role, state, s.ID[:min(16, len(s.ID))], s.Subject, na, s.DaysLeft, s.Constraints, s.KeyLocation)
			}
			return tw.Flush()
		},
	}
	t.flags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// describe is the --data/--db flag that names this target, for messages.
func (t *adminTarget) describe() string {
	if t.db != "" {
		return "--db " + redactDSN(t.db)
	}
	return "--data " + t.data
}

// importIntoDB completes a pending intermediate recorded in the database;
// false when the database has no issuers (a CA still only in files).
func importIntoDB(cmd *cobra.Command, t *adminTarget, file string) (bool, error) {
	dsn := t.db
	if dsn == "" {
		if _, err := os.Stat(filepath.Join(t.data, "certmint.db")); err != nil {
			return false, nil
		}
	}
	ctx := cmd.Context()
	st, err := t.open(ctx)
	if err != nil {
		return false, err
	}
	defer st.Close()
	recs, err := st.ListIssuers(ctx)
	if err != nil || len(recs) == 0 {
		return false, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return true, usagef("cannot read %s: %v", file, errors.Unwrap(err))
	}
	certs := parseCerts(data)
	if len(certs) == 0 {
		return true, usagef("%s holds no PEM certificate", file)
	}
	rec, err := ca.ImportIssuerCert(ctx, st, certs, file, time.Now())
	if err != nil {
		return true, caError(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "intermediate %s is active; running servers switch to it within a minute\n", rec.ID)
	return true, nil
}

// bundleFromDB prints the roots recorded in the database: the active
// chain's root, or with all every root clients should trust now.
func bundleFromDB(cmd *cobra.Command, data, db string, all bool) (bool, error) {
	if db == "" {
		if _, err := os.Stat(filepath.Join(data, "certmint.db")); err != nil {
			return false, nil
		}
	}
	t := &adminTarget{data: data, db: db}
	st, err := t.open(cmd.Context())
	if err != nil {
		return false, err
	}
	defer st.Close()
	recs, err := st.ListIssuers(cmd.Context())
	if err != nil || len(recs) == 0 {
		return false, err
	}
	var pemOut []byte
	if all {
		pemOut = ca.BundleOf(recs)
	} else {
		for _, r := range recs {
			if r.Role == ca.RoleIntermediate && r.State == ca.StateActive {
				for _, p := range recs {
					if p.ID == r.ParentID {
						pemOut = p.CertPEM
					}
				}
			}
		}
	}
	certs := parseCerts(pemOut)
	if len(certs) == 0 {
		return false, nil
	}
	cmd.OutOrStdout().Write(pemOut)
	var fps []string
	for _, c := range certs {
		fps = append(fps, fingerprint(c.Raw))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "SHA256 fingerprint: %s\n", strings.Join(fps, "\nSHA256 fingerprint: "))
	return true, nil
}
