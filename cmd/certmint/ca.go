package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/ca"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Set up and inspect the private CA"}
	var data, db string
	var all bool
	root := &cobra.Command{
		Use:   "root",
		Short: "Print the root certificate (PEM) on stdout and its SHA-256 fingerprint on stderr; --all: every root clients should trust now",
		Args:  noArgs,
		// The root certificate is public: printing it needs no key and so
		// no passphrase.
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Once a server has run, the database's issuers are the CA.
			if done, err := bundleFromDB(cmd, data, db, all); done || err != nil {
				return err
			}
			path := filepath.Join(data, "ca", ca.RootCertFile)
			pemBytes, err := os.ReadFile(path)
			if err != nil {
				return usagef("no CA in --data %s: run `certmint serve --data %s` once to create it", data, data)
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil || block.Type != "CERTIFICATE" {
				return fmt.Errorf("%s does not hold a PEM certificate", path)
			}
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			sum := sha256.Sum256(block.Bytes)
			cmd.OutOrStdout().Write(pem.EncodeToMemory(block))
			fmt.Fprintf(cmd.ErrOrStderr(), "SHA256 fingerprint: %s\n", hex.EncodeToString(sum[:]))
			return nil
		},
	}
	root.Flags().StringVar(&data, "data", "./certmint-data", "the certmint data directory")
	root.Flags().StringVar(&db, "db", "", "database URL (instead of --data's SQLite database)")
	root.Flags().BoolVar(&all, "all", false, "print every root clients should trust now (during a root rotation: the old and the new)")
	cmd.AddCommand(root, newCAInitCmd(), newCAImportCmd(), newCARotateCmd(), newCAStatusCmd())
	return cmd
}
