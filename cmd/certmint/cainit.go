package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/kms"
)

// caInitOptions are the flags of `certmint ca init`.
type caInitOptions struct {
	data                              string
	rootCert, rootKey                 string
	offlineRoot, csrOut               string
	intermediateCert, intermediateKey string
	permittedDNS, excludedDNS         []string
	permittedIP, excludedIP           []string
	rootName, intermediateName        string
	kms                               string
}

func newCAInitCmd() *cobra.Command {
	var o caInitOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Prepare a CA before the first serve: bring your own root or intermediate, an offline root, name constraints, keys in a PKCS#11 token",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.validate()
			if err != nil {
				return err
			}
			res, err := ca.Init(opts)
			if err != nil {
				return caError(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "CA initialised in %s; root SHA-256 %s\n", opts.Dir, res.RootFingerprint)
			if res.Pending {
				fmt.Fprintf(out, "The intermediate's CSR is in %s. Have the offline root sign it, e.g.\n"+
					"  openssl x509 -req -in %s -CA root.pem -CAkey root.key -copy_extensions copyall -days 1825 -out intermediate.pem\n"+
					"then run: certmint ca import-intermediate --data %s intermediate.pem\n", o.csrOut, o.csrOut, o.data)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "./certmint-data", "the certmint data directory")
	f.StringVar(&o.rootCert, "root-cert", "", "an existing root certificate (PEM)")
	f.StringVar(&o.rootKey, "root-key", "", "the key of --root-cert (PEM); certmint keeps a copy, encrypted with CERTMINT_CA_PASSPHRASE if set")
	f.StringVar(&o.offlineRoot, "offline-root", "", "a root certificate whose key stays elsewhere (PEM)")
	f.StringVar(&o.csrOut, "csr-out", "", "with --offline-root: where to write the intermediate's CSR")
	f.StringVar(&o.intermediateCert, "intermediate-cert", "", "an existing intermediate certificate, signed by --root-cert or --offline-root")
	f.StringVar(&o.intermediateKey, "intermediate-key", "", "the key of --intermediate-cert (PEM)")
	f.StringSliceVar(&o.permittedDNS, "permitted-dns", nil, "DNS suffix the intermediate may certify (repeatable; RFC 5280 name constraints)")
	f.StringSliceVar(&o.excludedDNS, "excluded-dns", nil, "DNS suffix the intermediate may not certify (repeatable)")
	f.StringSliceVar(&o.permittedIP, "permitted-ip", nil, "CIDR the intermediate may certify (repeatable)")
	f.StringSliceVar(&o.excludedIP, "excluded-ip", nil, "CIDR the intermediate may not certify (repeatable)")
	f.StringVar(&o.rootName, "root-name", "", "common name of the root certmint creates (default \"certmint Root CA\")")
	f.StringVar(&o.intermediateName, "intermediate-name", "", "common name of the intermediate certmint creates (default \"certmint Intermediate CA\")")
	f.StringVar(&o.kms, "kms", "", "pkcs11: URI (RFC 7512) of the token to create the keys in; PIN from pin-source= or CERTMINT_PKCS11_PIN")
	return cmd
}

// validate checks that the flags make one coherent request, before any
// file is read.
func (o *caInitOptions) validate() (ca.InitOptions, error) {
	var zero ca.InitOptions
	switch {
	case o.data == "":
		return zero, usagef("--data must name a directory")
	case o.rootKey != "" && o.rootCert == "":
		return zero, usagef("--root-key needs --root-cert, the certificate it belongs to")
	case o.rootCert != "" && o.offlineRoot != "":
		return zero, usagef("give the root once: --root-cert (with --root-key, or with --intermediate-cert) or --offline-root")
	case (o.intermediateCert == "") != (o.intermediateKey == ""):
		return zero, usagef("--intermediate-cert and --intermediate-key go together")
	case o.intermediateCert != "" && o.rootCert == "" && o.offlineRoot == "":
		return zero, usagef("--intermediate-cert needs its root: add --root-cert FILE (or --offline-root FILE)")
	case o.rootCert != "" && o.rootKey == "" && o.intermediateCert == "":
		return zero, usagef("--root-cert needs --root-key to sign an intermediate; for a root whose key stays elsewhere use --offline-root FILE --csr-out FILE")
	case o.offlineRoot != "" && o.intermediateCert == "" && o.csrOut == "":
		return zero, usagef("--offline-root needs --csr-out FILE, where certmint writes the intermediate's CSR for the root to sign")
	case o.csrOut != "" && (o.offlineRoot == "" || o.intermediateCert != ""):
		return zero, usagef("--csr-out is for --offline-root without --intermediate-cert")
	case o.intermediateCert != "" && len(o.permittedDNS)+len(o.excludedDNS)+len(o.permittedIP)+len(o.excludedIP) > 0:
		return zero, usagef("an existing intermediate keeps its own name constraints; drop --permitted-*/--excluded-* or let certmint create the intermediate")
	case o.intermediateCert != "" && o.intermediateName != "":
		return zero, usagef("--intermediate-name names an intermediate certmint creates; --intermediate-cert brings its own")
	case (o.rootCert != "" || o.offlineRoot != "") && o.rootName != "":
		return zero, usagef("--root-name names a root certmint creates; --root-cert/--offline-root bring their own")
	case o.kms != "" && o.intermediateCert != "":
		return zero, usagef("--kms creates the intermediate's key in the token; it cannot be combined with --intermediate-cert/--intermediate-key")
	case o.kms != "" && !kms.Available:
		return zero, usagef("%v", kms.ErrNoPKCS11)
	}
	var nc ca.NameConstraints
	var err error
	if nc.PermittedDNS, err = dnsConstraints("--permitted-dns", o.permittedDNS); err != nil {
		return zero, err
	}
	if nc.ExcludedDNS, err = dnsConstraints("--excluded-dns", o.excludedDNS); err != nil {
		return zero, err
	}
	if nc.PermittedIPs, err = policy.ParsePrefixes(o.permittedIP); err != nil {
		return zero, usagef("--permitted-ip: %v", err)
	}
	if nc.ExcludedIPs, err = policy.ParsePrefixes(o.excludedIP); err != nil {
		return zero, usagef("--excluded-ip: %v", err)
	}
	opts := ca.InitOptions{
		Dir: filepath.Join(o.data, "ca"), RootName: o.rootName, IntermediateName: o.intermediateName,
		RootCert: o.rootCert, RootKey: o.rootKey, OfflineRoot: o.offlineRoot, CSROut: o.csrOut,
		IntermediateCert: o.intermediateCert, IntermediateKey: o.intermediateKey,
		Constraints: nc, KMS: o.kms, Logger: newLogger("warn"),
	}
	if opts.Passphrase, err = caPassphrase(); err != nil {
		return zero, err
	}
	return opts, nil
}

// dnsConstraints checks DNS name constraint entries: a name, or ".name"
// for the names strictly below it (RFC 5280 §4.2.1.10).
func dnsConstraints(flag string, entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if err := policy.CheckSuffixes([]string{strings.TrimPrefix(e, ".")}); err != nil || strings.Contains(e, "*") {
			return nil, usagef("%s %q is not a DNS suffix (e.g. svc.test, or .svc.test for names below it only)", flag, e)
		}
		out = append(out, e)
	}
	return out, nil
}

func newCAImportCmd() *cobra.Command {
	var data string
	var t adminTarget
	cmd := &cobra.Command{
		Use:   "import-intermediate FILE",
		Short: "Activate the pending intermediate with its certificate, signed by the offline root",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("%s takes one argument, the signed intermediate certificate (PEM)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// After a rotation the pending intermediate is in the database.
			t.data = data
			if done, err := importIntoDB(cmd, &t, args[0]); done || err != nil {
				return err
			}
			dir := filepath.Join(data, "ca")
			iss, err := ca.ImportIntermediate(dir, args[0], time.Now())
			if err != nil {
				return caError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "intermediate %q is active until %s; start the server with: certmint serve --data %s\n",
				iss.Cert.Subject.CommonName, iss.Cert.NotAfter.UTC().Format(time.RFC3339), data)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "./certmint-data", "the certmint data directory")
	cmd.Flags().StringVar(&t.db, "db", "", "database URL, when the pending intermediate comes from `ca rotate intermediate --db`")
	return cmd
}

// caError makes what the operator can fix a usage error (exit 2): a bad
// certificate or key, an existing CA, a token problem.
func caError(err error) error {
	for _, e := range []error{ca.ErrBadInput, ca.ErrExists, ca.ErrPending, kms.ErrNoPKCS11, kms.ErrBadURI, kms.ErrNoPIN,
		kms.ErrWrongPIN, kms.ErrNoModule, kms.ErrNoToken, kms.ErrNoObject, kms.ErrObjectExists, kms.ErrReadOnly} {
		if errors.Is(err, e) {
			return usagef("%v", err)
		}
	}
	return err
}
