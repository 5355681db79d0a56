// Command certmint is the ACME server with its own private CA, its admin
// tools, the auto-renew agent and a load generator, in one binary.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and maps errors to exit codes: 0 ok,
// 2 bad usage or configuration, 1 runtime failure; one line on stderr.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	// One line: drivers sometimes put details on further lines.
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintln(os.Stderr, "certmint: "+msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "certmint",
		Short:         "ACME server with its own private CA",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyConfig(cmd)
		},
	}
	root.PersistentFlags().String("config", "", "YAML file with the same keys as the flags")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newServeCmd(), newCACmd(), newVersionCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	addDBPasswordFlags(root)
	// Cobra adds `completion` only inside Execute, after guardCommands
	// would have run: add it now so that `completion bsh` is refused like
	// any other mistyped command (it printed help and exited 0).
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(newHelpCmd())
	guardCommands(root)
	return root
}

// extraCommands lets the admin, agent and bench commands register from
// their own files.
var extraCommands []func() *cobra.Command

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "certmint", version)
		},
	}
}
