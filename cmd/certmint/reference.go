package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/certmint/certmint/internal/atomicfile"
)

// The configuration reference (docs/configuration.md) is generated from
// the flag definitions themselves, so it cannot drift from them:
// TestConfigurationReference fails when the file and the flags disagree.
// Regenerate it with `make docs`.

// referenceFile is the generated file, relative to the repository root.
const referenceFile = "docs/configuration.md"

// regenerateCommand is what a stale reference tells the reader to run.
const regenerateCommand = "make docs   (that is: go run ./cmd/certmint config-reference --out docs/configuration.md)"

func newReferenceCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:    "config-reference",
		Short:  "Write the configuration reference (Markdown) from the flag definitions",
		Hidden: true, // a maintainer's tool: `make docs`
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc := configReference(cmd.Root())
			if out == "" {
				_, err := cmd.OutOrStdout().Write(doc)
				return err
			}
			return atomicfile.Write(out, doc, 0o644)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write to `FILE` instead of stdout")
	return cmd
}

func init() { extraCommands = append(extraCommands, newReferenceCmd) }

const referenceIntro = `# Configuration reference

<!-- Generated from the flag definitions by ` + "`make docs`" + `; do not edit by hand.
     TestConfigurationReference fails when this file and the flags disagree. -->

Every flag of every command can be set three ways. The command line wins
over the environment, which wins over the file, which wins over the
default:

- on the command line: ` + "`--http01-port 5002`" + `;
- in the environment: ` + "`CERTMINT_<FLAG>`" + `, the flag's name in upper case with
  ` + "`_`" + ` for ` + "`-`" + ` (` + "`CERTMINT_HTTP01_PORT=5002`" + `). A variable applies to every
  command that has the flag;
- in a YAML file given with ` + "`--config FILE`" + ` (or ` + "`CERTMINT_CONFIG`" + `), whose keys
  are the flag names (` + "`http01-port: 5002`" + `; ` + "`http01_port`" + ` works too). A key no
  flag of the command has stops it with exit status 2.

List flags take several values separated by commas or the flag repeated
(` + "`--hostname a.internal,b.internal`" + `); in the environment, commas
(` + "`CERTMINT_HOSTNAME=a.internal,b.internal`" + `); in YAML, a list or a
comma-separated string. A bad value stops the command with one line on
stderr and exit status 2, before anything is written.

Keep secrets off the command line (` + "`ps`" + ` shows every process's arguments):
the ` + "`*-file`" + ` flags (` + "`--db-password-file`" + `, ` + "`--oidc-client-secret-file`" + `,
` + "`--eab-hmac-file`" + `, ` + "`--p12-password-file`" + `, ` + "`--password-file`" + `, ` + "`--secret-file`" + `) name a file that holds
one, the CA passphrase and the PKCS#11 PIN are environment variables (below),
and a flag that takes a secret itself, such as the agent's ` + "`--eab-hmac`" + `, is
better given as its environment variable (` + "`CERTMINT_EAB_HMAC`" + `).
`

// configReference renders the reference for every visible command of
// root that has flags of its own, in command-path order.
func configReference(root *cobra.Command) []byte {
	var b bytes.Buffer
	b.WriteString(referenceIntro)
	b.WriteString("\n## Environment only\n\n| variable | meaning |\n|---|---|\n")
	for _, e := range envOnly {
		fmt.Fprintf(&b, "| `%s` | %s |\n", e.Name, cell(e.Help))
	}
	for _, c := range referenceCommands(root) {
		writeCommandReference(&b, c)
	}
	return b.Bytes()
}

// referenceCommands lists the visible commands with flags of their own.
func referenceCommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c != root && len(ownFlags(c)) > 0 {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// The server first: it is what most readers came for.
	slices.SortFunc(out, func(a, b *cobra.Command) int {
		if (a.Name() == "serve") != (b.Name() == "serve") {
			if a.Name() == "serve" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.CommandPath(), b.CommandPath())
	})
	return out
}

// ownFlags are the visible flags a command declares itself (persistent
// ones included), not those it inherits.
func ownFlags(c *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" && !seen[f.Name] {
			seen[f.Name] = true
			out = append(out, f)
		}
	}
	c.PersistentFlags().VisitAll(add)
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if c.InheritedFlags().Lookup(f.Name) == nil {
			add(f)
		}
	})
	slices.SortFunc(out, func(a, b *pflag.Flag) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func writeCommandReference(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "\n## %s\n\n%s.\n", c.CommandPath(), strings.TrimSuffix(c.Short, "."))
	// Persistent flags of a parent (not the root's --config) apply here too.
	for p := c.Parent(); p != nil && p.HasParent(); p = p.Parent() {
		if p.PersistentFlags().HasAvailableFlags() {
			fmt.Fprintf(w, "It also takes the flags of `%s`.\n", p.CommandPath())
		}
	}
	fmt.Fprintf(w, "\n| flag | environment | YAML key | default | meaning |\n|---|---|---|---|---|\n")
	for _, f := range ownFlags(c) {
		typ, usage := pflag.UnquoteUsage(f)
		flag := "--" + f.Name
		if typ != "" && typ != "bool" {
			flag += " " + typ
		}
		fmt.Fprintf(w, "| `%s` | `%s` | `%s` | %s | %s |\n", flag, envName(f.Name), f.Name, defaultCell(f), cell(usage))
	}
}

// defaultCell shows a flag's default, nothing for an empty one.
func defaultCell(f *pflag.Flag) string {
	switch f.DefValue {
	case "", "[]":
		return ""
	}
	return "`" + f.DefValue + "`"
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
