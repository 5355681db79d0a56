package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
	"github.com/certmint/certmint/storage"
)

func init() {
	adminSubcommands = append(adminSubcommands, newInventoryCmd, newWebhookCmd)
}

// newInventoryCmd is `certmint admin inventory [--state S] [--name P] [--json]`:
// the fleet inventory, one line per certificate lineage.
func newInventoryCmd(t *adminTarget) *cobra.Command {
	var state, pattern string
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "List certificate lineages and their renewal state (healthy, due, overdue, expired, revoked)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" && !slices.Contains(storage.LineageStates, state) {
				return usagef("--state %q must be one of %s", state, strings.Join(storage.LineageStates, ", "))
			}
			if limit < 1 {
				return usagef("--limit %d must be at least 1", limit)
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			f := storage.LineageFilter{State: state, Pattern: pattern, Now: time.Now().UTC()}
			var all []storage.Lineage
			page := storage.Page{Limit: min(limit, 1000)}
			for len(all) < limit {
				ls, err := st.ListLineages(cmd.Context(), f, page)
				if err != nil {
					return err
				}
				all = append(all, ls...)
				if len(ls) < page.Limit {
					break
				}
				page.After = ls[len(ls)-1].ID
			}
			if len(all) > limit {
				all = all[:limit]
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(inventoryJSON(all))
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "STATE\tNAMES\tACCOUNT\tSERIAL\tISSUED\tEXPIRES\tRENEW FROM\tRENEW BY\tRENEWALS\tLAST RENEWAL")
			for _, l := range all {
				last := "-"
				if l.LastRenewalAt != nil {
					last = l.LastRenewalAt.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.State, strings.Join(l.Names, ","), l.AccountID, l.Serial,
					l.IssuedAt.Format(time.RFC3339), l.NotAfter.Format(time.RFC3339), l.WindowStart.Format(time.RFC3339),
					l.WindowEnd.Format(time.RFC3339), l.Renewals, last)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "only lineages in this state: "+strings.Join(storage.LineageStates, ", "))
	f.StringVar(&pattern, "name", "", "only lineages with a name containing this (* matches anything)")
	f.BoolVar(&asJSON, "json", false, "print JSON (an array of lineages) instead of a table")
	f.IntVar(&limit, "limit", 10000, "at most this many lineages, newest first")
	return cmd
}

type lineageJSON struct {
	ID            string     `json:"id"`
	State         string     `json:"state"`
	Names         []string   `json:"names"`
	AccountID     string     `json:"account_id"`
	CertificateID string     `json:"certificate_id"`
	Serial        string     `json:"serial"`
	Profile       string     `json:"profile,omitempty"`
	IssuedAt      time.Time  `json:"issued_at"`
	NotAfter      time.Time  `json:"not_after"`
	WindowStart   time.Time  `json:"renewal_window_start"`
	WindowEnd     time.Time  `json:"renewal_window_end"`
	Renewals      int        `json:"renewals"`
	LastRenewalAt *time.Time `json:"last_renewal_at"`
}

func inventoryJSON(ls []storage.Lineage) []lineageJSON {
	out := make([]lineageJSON, len(ls))
	for i, l := range ls {
		out[i] = lineageJSON{ID: l.ID, State: l.State, Names: l.Names, AccountID: l.AccountID, CertificateID: l.CertificateID,
			Serial: l.Serial, Profile: l.Profile, IssuedAt: l.IssuedAt, NotAfter: l.NotAfter, WindowStart: l.WindowStart,
			WindowEnd: l.WindowEnd, Renewals: l.Renewals, LastRenewalAt: l.LastRenewalAt}
	}
	return out
}

// minSecretLen keeps receivers from verifying against a guessable key.
const minSecretLen = 16

// readWebhookSecret reads the signing secret from a file (never a flag
// value: it would show in ps and shell history), without its line end.
func readWebhookSecret(file string) (string, error) {
	if file == "" {
		return "", usagef("--secret-file FILE is required: the file holds the secret receivers check signatures with (e.g. openssl rand -hex 32 > FILE)")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usagef("cannot read --secret-file %s: %v", file, errors.Unwrap(err))
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if len(secret) < minSecretLen || strings.ContainsAny(secret, "\r\n") {
		return "", usagef("--secret-file %s must hold one line of at least %d characters (e.g. openssl rand -hex 32 > FILE)", file, minSecretLen)
	}
	return secret, nil
}

// newWebhookCmd is `certmint admin webhook add|list|remove`.
func newWebhookCmd(t *adminTarget) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Add, list and remove webhook endpoints (operator notifications)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("admin webhook needs add, list or remove (see --help)")
		},
	}
	var url, secretFile, events string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add an endpoint: events are POSTed to it as JSON, signed with the secret",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return usagef("--url URL is required, e.g. --url https://hooks.example.internal/certmint")
			}
			// The default address policy here; the server checks each
			// dial against its --validation-allow-net/-deny-net too.
			if err := validate.CheckURL(url, nil, nil); err != nil {
				return usagef("--url: %v", err)
			}
			evs, err := webhook.ParseEvents(events)
			if err != nil {
				return usagef("--events: %v", err)
			}
			secret, err := readWebhookSecret(secretFile)
			if err != nil {
				return err
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ep, err := st.AddWebhook(cmd.Context(), url, secret, evs, audit.Event{Actor: "cli", Action: audit.WebhookAdd, Detail: url})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "added", ep.ID)
			return nil
		},
	}
	add.Flags().StringVar(&url, "url", "", "the receiver's URL (https:// or http://)")
	add.Flags().StringVar(&secretFile, "secret-file", "", "file holding the HMAC-SHA256 signing secret (one line, 16+ characters)")
	add.Flags().StringVar(&events, "events", "", "comma-separated events to send (default all): "+strings.Join(webhook.Types, ", "))
	list := &cobra.Command{
		Use:   "list",
		Short: "List endpoints (never their secrets)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			eps, err := st.ListWebhooks(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tURL\tEVENTS\tADDED BY\tADDED")
			for _, ep := range eps {
				evs := ep.Events
				if evs == "" {
					evs = "all"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ep.ID, ep.URL, evs, ep.CreatedBy, ep.CreatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove an endpoint; its undelivered events are dropped",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("admin webhook remove takes one endpoint ID (see admin webhook list)")
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.RemoveWebhook(cmd.Context(), args[0], audit.Event{Actor: "cli", Action: audit.WebhookRemove, Target: audit.Webhook(args[0])})
			if errors.Is(err, storage.ErrNotFound) {
				return usagef("no webhook endpoint %q (see admin webhook list)", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "removed", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
