package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/internal/truststore"
)

func init() { extraCommands = append(extraCommands, newTrustCmd) }

// trustOptions are the flags shared by the trust subcommands.
type trustOptions struct {
	Root, Server, Fingerprint string
	System, Java, NSS         bool
}

func newTrustCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Install the CA's roots into the system, Java and NSS trust stores",
		Long: `Install the CA's roots into this machine's trust stores, take them out, or
show where they are. Without --system, --java or --nss every store found is
used: the system store (update-ca-certificates or update-ca-trust), the
cacerts of each JDK (or $JAVA_HOME's) and the NSS databases of Chromium
(~/.pki/nssdb) and Firefox. Each entry is named certmint-<sha256 of the root>,
and uninstall removes only such entries.`,
	}
	cmd.AddCommand(
		trustSubcommand("install", "Trust every root of the bundle in each store", runTrustInstall),
		trustSubcommand("uninstall", "Remove the roots certmint added (all of them without --root or --server)", runTrustUninstall),
		trustSubcommand("status", "Say which certmint roots each store trusts", runTrustStatus),
	)
	return cmd
}

func trustSubcommand(use, short string, run func(context.Context, io.Writer, trustOptions) error) *cobra.Command {
	var o trustOptions
	cmd := &cobra.Command{
		Use: use, Short: short, Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Root, "root", "", "PEM `FILE` with the roots to trust (as certmint ca root prints)")
	f.StringVar(&o.Server, "server", "", "certmint server `URL`, e.g. https://ca.internal:8443/acme/directory; its /roots/bundle.pem is used")
	f.StringVar(&o.Fingerprint, "root-fingerprint", "", "`SHA256` of the CA root (as certmint ca root prints), required with --server")
	f.BoolVar(&o.System, "system", false, "the system store (update-ca-certificates or update-ca-trust)")
	f.BoolVar(&o.Java, "java", false, "the cacerts of each JDK found, or of $JAVA_HOME")
	f.BoolVar(&o.NSS, "nss", false, "NSS databases: ~/.pki/nssdb (Chromium) and Firefox profiles")
	return cmd
}

// selected reports whether a root selector was given; it checks them so
// bad usage is found before anything is fetched or written.
func (o trustOptions) selected() (bool, error) {
	switch {
	case o.Root != "" && (o.Server != "" || o.Fingerprint != ""):
		return false, usagef("give either --root FILE or --server URL --root-fingerprint SHA256, not both")
	case o.Root != "":
		return true, nil
	case o.Server == "" && o.Fingerprint == "":
		return false, nil
	case o.Server == "" || o.Fingerprint == "":
		return false, usagef("--server and --root-fingerprint go together: the fingerprint is how the fetched roots are trusted")
	}
	if _, err := truststore.ParseFingerprint(o.Fingerprint); err != nil {
		return false, usagef("--root-fingerprint: %v", err)
	}
	if _, err := truststore.BundleURL(o.Server); err != nil {
		return false, usagef("--server: %v", err)
	}
	return true, nil
}

// roots reads the roots the selectors name.
func (o trustOptions) roots(ctx context.Context) ([]*x509.Certificate, error) {
	if o.Root != "" {
		data, err := os.ReadFile(o.Root)
		if err != nil {
			return nil, usagef("cannot read --root %s: %v", o.Root, errors.Unwrap(err))
		}
		roots, err := truststore.ParseRoots(data)
		if err != nil {
			return nil, usagef("--root %s: %v", o.Root, err)
		}
		return roots, nil
	}
	pin, _ := truststore.ParseFingerprint(o.Fingerprint)
	return truststore.FetchPinned(ctx, o.Server, pin)
}

func (o trustOptions) find() truststore.Found {
	return truststore.Find(truststore.Kinds{System: o.System, Java: o.Java, NSS: o.NSS}, truststore.DefaultEnv())
}

func runTrustInstall(ctx context.Context, w io.Writer, o trustOptions) error {
	ok, err := o.selected()
	if err != nil {
		return err
	}
	if !ok {
		return usagef("say which roots to trust: --root FILE, or --server URL --root-fingerprint SHA256")
	}
	roots, err := o.roots(ctx)
	if err != nil {
		return err
	}
	found := o.find()
	return reportResults(w, found, truststore.Install(ctx, found.Stores, roots))
}

func runTrustUninstall(ctx context.Context, w io.Writer, o trustOptions) error {
	ok, err := o.selected()
	if err != nil {
		return err
	}
	var fps []string // none: every certmint entry
	if ok {
		roots, err := o.roots(ctx)
		if err != nil {
			return err
		}
		for _, r := range roots {
			fps = append(fps, truststore.Fingerprint(r))
		}
	}
	found := o.find()
	return reportResults(w, found, truststore.Uninstall(ctx, found.Stores, fps))
}

func runTrustStatus(ctx context.Context, w io.Writer, o trustOptions) error {
	ok, err := o.selected()
	if err != nil {
		return err
	}
	var roots []*x509.Certificate
	if ok {
		if roots, err = o.roots(ctx); err != nil {
			return err
		}
	}
	found := o.find()
	failed := reportDiscovery(found)
	for _, st := range truststore.Statuses(ctx, found.Stores) {
		if st.Err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "certmint: %s: %s\n", st.Store, oneLine(st.Err))
			continue
		}
		if roots != nil {
			for _, r := range roots {
				verb := "does not trust"
				if st.Roots[truststore.Fingerprint(r)] != nil {
					verb = "trusts"
				}
				fmt.Fprintf(w, "%s: %s %s\n", st.Store, verb, describeRoot(r))
			}
			continue
		}
		if len(st.Roots) == 0 {
			fmt.Fprintf(w, "%s: no certmint root\n", st.Store)
		}
		for _, fp := range sortedKeys(st.Roots) {
			fmt.Fprintf(w, "%s: trusts %s\n", st.Store, describeRoot(st.Roots[fp]))
		}
	}
	return trustFailure(failed, len(found.Stores)+len(found.Missing))
}

// reportDiscovery prints the store kinds asked for and not found, and the
// notes; it returns how many count as failed.
func reportDiscovery(found truststore.Found) int {
	for _, err := range found.Missing {
		fmt.Fprintf(os.Stderr, "certmint: %s\n", oneLine(err))
	}
	for _, n := range found.Notes {
		fmt.Fprintf(os.Stderr, "certmint: %s\n", n)
	}
	return len(found.Missing)
}

// reportResults prints one line per root and store on w and one line per
// failed store on stderr; any failure is exit status 1.
func reportResults(w io.Writer, found truststore.Found, results []truststore.Result) error {
	failed := reportDiscovery(found)
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "certmint: %s: %s\n", r.Store, oneLine(r.Err))
			continue
		}
		for _, c := range r.Added {
			fmt.Fprintf(w, "%s: added %s\n", r.Store, describeRoot(c))
		}
		for _, c := range r.Present {
			fmt.Fprintf(w, "%s: already trusts %s\n", r.Store, describeRoot(c))
		}
		for _, fp := range r.Removed {
			fmt.Fprintf(w, "%s: removed %s\n", r.Store, truststore.EntryName(fp))
		}
		if len(r.Added)+len(r.Present)+len(r.Removed) == 0 {
			fmt.Fprintf(w, "%s: nothing of certmint's to remove\n", r.Store)
		}
	}
	return trustFailure(failed, len(results)+len(found.Missing))
}

func trustFailure(failed, total int) error {
	switch {
	case total == 0:
		return errors.New("no trust store found on this machine (see `certmint trust --help`)")
	case failed > 0:
		return fmt.Errorf("%d of %d trust stores failed (see above)", failed, total)
	}
	return nil
}

func describeRoot(c *x509.Certificate) string {
	return fmt.Sprintf("%q (sha256 %s)", c.Subject.String(), truststore.Fingerprint(c))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
