package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestUnknownCommandsAndFlags: a mistyped command or flag, at any depth,
// is a usage error (exit 2) of one line with the nearest real name.
func TestUnknownCommandsAndFlags(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string // "" = no error
	}{
		"fail/root-command":       {[]string{"srve"}, `unknown command "srve"; did you mean "serve"? (see certmint --help)`},
		"fail/root-command-flags": {[]string{"srve", "--data", "x"}, `unknown command "srve"; did you mean "serve"?`},
		"fail/no-suggestion":      {[]string{"frobnicate"}, `unknown command "frobnicate" (see certmint --help)`},
		"fail/nested-command":     {[]string{"ca", "rotatr"}, `unknown command "rotatr" for "certmint ca"; did you mean "rotate"? (see certmint ca --help)`},
		"fail/runnable-group":     {[]string{"admin", "usr"}, `unknown command "usr" for "certmint admin"; did you mean "user"?`},
		"fail/flag":               {[]string{"serve", "--lisen", ":1"}, `unknown flag --lisen; did you mean --listen? (see certmint serve --help)`},
		"fail/flag-no-suggestion": {[]string{"serve", "--frobnicate"}, `unknown flag --frobnicate (see certmint serve --help)`},
		"fail/shorthand":          {[]string{"serve", "-x"}, `unknown flag -x in -x`},
		"fail/bad-value":          {[]string{"serve", "--http01-port", "abc"}, `"--http01-port"`},
		"fail/leaf-args":          {[]string{"version", "x"}, `takes no arguments`},
		// cobra's own completion command, added inside Execute.
		"fail/completion-shell":  {[]string{"completion", "bsh"}, `unknown command "bsh" for "certmint completion"; did you mean "bash"`},
		"fail/completion-args":   {[]string{"completion", "bash", "x"}, `(see certmint completion bash --help)`},
		"fail/help-topic":        {[]string{"help", "srve"}, `unknown command "srve"; did you mean "serve"? (see certmint --help)`},
		"fail/help-nested-topic": {[]string{"help", "ca", "rotatr"}, `unknown command "rotatr" for "certmint ca"; did you mean "rotate"?`},
		"ok/help-topic":          {[]string{"help", "ca", "rotate"}, ""},
		"ok/group-alone":         {[]string{"ca"}, ""},
		"ok/root-alone":          {nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			root := newRootCmd()
			root.SetArgs(tc.args)
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			err := root.Execute()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !strings.Contains(out.String(), "Usage:") {
					t.Fatalf("no help shown:\n%s", out.String())
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v (%T), want a usage error", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %q, want one line with %q", err.Error(), tc.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"listen", "listen", 0}, {"lisen", "listen", 1}, {"", "abc", 3}, {"admin-listen", "listen", 6}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
