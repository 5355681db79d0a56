package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// A mistyped command or flag is bad usage like any other: one line that
// names it and suggests the nearest real one, exit status 2. Cobra's own
// messages ran over several lines ("Did you mean this?\n\tserve") and
// exited 1, and pflag suggests nothing.

// guardCommands walks the command tree once it is built: every group
// (a command with subcommands) refuses an unknown subcommand with a
// suggestion and shows its help when given none, and every argument check
// fails as a usage error.
func guardCommands(cmd *cobra.Command) {
	if cmd.HasSubCommands() {
		cmd.Args = unknownSubcommand
		if !cmd.Runnable() {
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	} else if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			var ue *usageError
			if err != nil && !errors.As(err, &ue) {
				return usagef("%v (see %s --help)", err, cmd.CommandPath())
			}
			return err
		}
	}
	for _, sub := range cmd.Commands() {
		guardCommands(sub)
	}
}

// newHelpCmd replaces cobra's `help`, which showed the root's help and
// exited 0 for a topic that does not exist (`certmint help srve`): once
// guardCommands gives every group an argument check, cobra's lookup no
// longer fails on an unknown word but returns the group with the word
// left over. Here that word is refused like the mistyped command itself.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			topic, rest, err := cmd.Root().Find(args)
			if err != nil {
				return usagef("%v (see certmint --help)", err)
			}
			if len(rest) > 0 {
				return unknownSubcommand(topic, rest)
			}
			return topic.Help()
		},
	}
}

// unknownSubcommand is the argument check of a command group: any
// argument is a subcommand that does not exist.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its path
	}
	where := ""
	if cmd.HasParent() {
		where = fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	return usagef("unknown command %q%s%s (see %s --help)", args[0], where, didYouMean(cmd.SuggestionsFor(args[0]), `"`), cmd.CommandPath())
}

// flagError is the root's flag error function: an unknown flag gets the
// nearest flag of its command as a suggestion; other flag errors (a bad
// value) are passed on as they are. All are usage errors.
func flagError(cmd *cobra.Command, err error) error {
	// `certmint srve --data x`: the flag is unknown because the command
	// is; say that. (The words parsed before the error are the args.)
	if args := cmd.Flags().Args(); cmd.HasSubCommands() && len(args) > 0 {
		return unknownSubcommand(cmd, args)
	}
	var ne *pflag.NotExistError
	if errors.As(err, &ne) {
		name := ne.GetSpecifiedName()
		if group := ne.GetSpecifiedShortnames(); group != "" {
			return usagef("unknown flag -%s in -%s (see %s --help)", name, group, cmd.CommandPath())
		}
		return usagef("unknown flag --%s%s (see %s --help)", name, didYouMean(similarFlags(cmd, name), "--"), cmd.CommandPath())
	}
	return usagef("%v (see %s --help)", err, cmd.CommandPath())
}

// didYouMean is "; did you mean X?" or "; did you mean X or Y?", each
// candidate quoted (`"`) or prefixed ("--"); "" when there are none.
func didYouMean(candidates []string, mark string) string {
	if len(candidates) == 0 {
		return ""
	}
	quoted := make([]string, len(candidates))
	for i, c := range candidates {
		if mark == `"` {
			quoted[i] = `"` + c + `"`
		} else {
			quoted[i] = mark + c
		}
	}
	return "; did you mean " + strings.Join(quoted, " or ") + "?"
}

// similarFlags are the visible flags of cmd (its own and inherited) within
// two edits of name, or that name is a prefix of; at most three.
func similarFlags(cmd *cobra.Command, name string) []string {
	var out []string
	seen := map[string]bool{}
	visit := func(f *pflag.Flag) {
		if f.Hidden || seen[f.Name] || len(out) >= 3 {
			return
		}
		if editDistance(name, f.Name) <= 2 || (len(name) >= 3 && strings.HasPrefix(f.Name, name)) {
			seen[f.Name] = true
			out = append(out, f.Name)
		}
	}
	cmd.LocalFlags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
