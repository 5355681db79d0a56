package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

func init() { adminSubcommands = append(adminSubcommands, newEABCmd) }

// newEABCmd is `certmint admin eab create|list|revoke`: external account
// binding keys, offline on the data directory or database.
func newEABCmd(t *adminTarget) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eab",
		Short: "Create, list and revoke external account binding keys",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("admin eab needs create, list or revoke (see --help)")
		},
	}
	var label, workload string
	var allow []string
	var reusable bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key; prints KID=<key id> and HMAC=<base64url key> (shown only once)",
		Long: `Create an external account binding key; prints KID=<key id> and HMAC=<base64url
key> (shown only once). With --workload PATH every account registered with the
key is that workload: its certificates carry the URI SAN
spiffe://<serve --trust-domain>/PATH beside their DNS names, and it prints
WORKLOAD=/PATH too. A server without --trust-domain refuses to start while such
a key is active (see docs/workload-identity.md).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// eab.NewKey reads a blank workload as "none", which is right
			// for the console's optional field; a --workload given blank
			// on the command line is a mistake, not a key without one.
			if cmd.Flags().Changed("workload") && strings.TrimSpace(workload) == "" {
				return usagef("--workload is empty; give a path such as payments/sender, or leave the flag out for a key without a workload")
			}
			key, mac, err := eab.NewKey(eab.Spec{Label: label, Allow: allow, Reusable: reusable, Workload: workload})
			var fe *eab.FieldError
			if errors.As(err, &fe) {
				return usagef("--%s: %v", fe.Field, fe.Err)
			}
			if err != nil {
				return err
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.CreateEABKey(cmd.Context(), key); err != nil {
				return fmt.Errorf("store the key: %w", err)
			}
			detail := "label " + label
			if key.Workload != "" {
				detail += ", workload " + key.Workload
			}
			_ = st.AddAuditEvent(cmd.Context(), audit.Event{Actor: "cli", Action: audit.EABCreate, Target: audit.EABKey(key.ID), Detail: detail})
			fmt.Fprintf(cmd.OutOrStdout(), "KID=%s\nHMAC=%s\n", key.ID, mac)
			if key.Workload != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "WORKLOAD=%s\n", key.Workload)
			}
			return nil
		},
	}
	create.Flags().StringVar(&label, "label", "", "a name for the key, e.g. the team it is for")
	create.Flags().StringSliceVar(&allow, "allow", nil, "DNS suffix (payments.internal, *.payments.internal) or IP CIDR the key's accounts may order; repeatable")
	create.Flags().BoolVar(&reusable, "reusable", false, "allow several accounts to bind with this key")
	create.Flags().StringVar(&workload, "workload", "", "SPIFFE ID `PATH` (e.g. payments/sender) of the workload every account of this key is; its certificates name spiffe://TRUST-DOMAIN/PATH")

	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never their MAC keys)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			keys, err := st.ListEABKeys(cmd.Context(), "", storage.Page{Limit: 1000})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KID\tLABEL\tALLOW\tWORKLOAD\tREUSABLE\tREVOKED\tUSED BY")
			for _, k := range keys {
				wl := k.Workload
				if wl == "" {
					wl = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%v\t%s\n", k.ID, k.Label, k.Allow, wl, k.Reusable, k.Revoked, k.UsedBy)
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke KID",
		Short: "Revoke a key: no new account can bind with it",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("admin eab revoke takes one key ID")
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.RevokeEABKey(cmd.Context(), args[0])
			if errors.Is(err, storage.ErrNotFound) {
				return usagef("no EAB key %q (see admin eab list)", args[0])
			}
			if err != nil && !errors.Is(err, storage.ErrConflict) {
				return err
			}
			_ = st.AddAuditEvent(cmd.Context(), audit.Event{Actor: "cli", Action: audit.EABRevoke, Target: audit.EABKey(args[0])})
			fmt.Fprintln(cmd.OutOrStdout(), "revoked", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
