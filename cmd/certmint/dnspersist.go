package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/storage"
)

// checkPersistIssuers normalizes --dns-persist-issuer to the form the
// challenge object must carry (draft-ietf-acme-dns-persist §3.1: lowercase
// A-labels without a trailing dot, at most 10).
func (o *serveOptions) checkPersistIssuers() error {
	if len(o.PersistIssuer) > 10 {
		return usagef("--dns-persist-issuer is given %d times; dns-persist-01 allows at most 10 issuer domain names", len(o.PersistIssuer))
	}
	out := make([]string, 0, len(o.PersistIssuer))
	for _, n := range o.PersistIssuer {
		norm, ok := validate.NormalizeIssuer(n)
		if !ok {
			return usagef("--dns-persist-issuer %q is not a domain name; give the CA's own DNS name in ASCII (punycode), e.g. ca.internal", n)
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	o.PersistIssuer = out
	return nil
}

func init() { adminSubcommands = append(adminSubcommands, newDNSPersistRecordCmd) }

// newDNSPersistRecordCmd is `admin dns-persist-record`: it prints the TXT
// record an operator publishes once so that an account may get
// certificates for a name through dns-persist-01, with no DNS credentials
// on the host and no open port (draft-ietf-acme-dns-persist §4.1).
func newDNSPersistRecordCmd(t *adminTarget) *cobra.Command {
	var o serveOptions
	var account, name, server string
	var wildcard, hashed bool
	cmd := &cobra.Command{
		Use:   "dns-persist-record --account ID --name NAME [--wildcard]",
		Short: "Print the _validation-persist TXT record that lets an account issue for a name with dns-persist-01",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" || strings.TrimSpace(name) == "" {
				return usagef("dns-persist-record needs --account ID (see `certmint admin` or the console's Accounts page) and --name NAME")
			}
			if err := o.checkPersistIssuers(); err != nil {
				return err
			}
			if len(o.PersistIssuer) == 0 {
				return usagef("no issuer domain name: give --dns-persist-issuer with the value the server runs with (or the same --config)")
			}
			n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
			if base, ok := strings.CutPrefix(n, "*."); ok {
				n, wildcard = base, true // a wildcard needs policy=wildcard (§5)
			}
			if _, ok := validate.NormalizeIssuer(n); !ok {
				return usagef("--name %q is not a DNS name, e.g. svc.internal or *.svc.internal", name)
			}
			if server == "" {
				if len(o.Hostnames) == 0 {
					o.Hostnames = []string{"localhost"}
				}
				_, port, _ := net.SplitHostPort(o.Listen)
				server = baseURL(o, port)
			}
			base := strings.TrimSuffix(strings.TrimSuffix(server, "/"), "/acme/directory")
			if u, err := url.Parse(base); err != nil || u.Scheme != "https" || u.Host == "" {
				return usagef("--server %q is not the server's https URL, e.g. https://ca.internal:8443/acme/directory", server)
			}
			st, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			acct, err := st.GetAccount(cmd.Context(), account)
			if errors.Is(err, storage.ErrNotFound) {
				return usagef("no account %q; the ID is the last part of the account URL", account)
			}
			if err != nil {
				return fmt.Errorf("look up account %s: %w", account, err)
			}
			if acct.Status != acme.StatusValid {
				return usagef("account %s is %s; a record for it would never validate", account, acct.Status)
			}
			accountURI := base + "/acme/account/" + acct.ID
			if hashed {
				accountURI = validate.HashedAccountURI(base+acme.AccountHashPath, n, acct.KeyThumbprint, accountURI)
			}
			rec := validate.FormatPersistRecord(o.PersistIssuer[0], accountURI, wildcard, nil)
			fmt.Fprintf(cmd.OutOrStdout(), "%s.%s. IN TXT %q\n", validate.PersistLabel, n, rec)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&account, "account", "", "ID of the ACME account that may issue (the end of its account URL)")
	f.StringVar(&name, "name", "", "DNS name the record covers, e.g. svc.internal (*.svc.internal implies --wildcard)")
	f.BoolVar(&wildcard, "wildcard", false, "add policy=wildcard: the record also covers *.NAME and every name under NAME")
	f.BoolVar(&hashed, "hashed", false, "name the account by its hashed URI (draft-ietf-acme-dns-persist-02), not its URL; stops validating after an account key change")
	f.StringVar(&server, "server", "", "the ACME directory URL clients use (default: https://<first --hostname>:<--listen port>)")
	f.StringSliceVar(&o.PersistIssuer, "dns-persist-issuer", nil, "issuer domain name the server runs with (the first is used)")
	f.StringSliceVar(&o.Hostnames, "hostname", nil, "as for serve: the first one is the host of the account URL")
	f.StringVar(&o.Listen, "listen", ":8443", "as for serve: its port is the port of the account URL")
	return cmd
}
