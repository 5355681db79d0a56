package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// usageError is bad usage or configuration: exit status 2, one line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// envName is the environment variable that sets a flag:
// --http01-port is CERTMINT_HTTP01_PORT.
func envName(flag string) string {
	return "CERTMINT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyConfig fills every flag the user did not set on the command line,
// first from its CERTMINT_* environment variable, then from the YAML file
// named by --config (keys are the flag names). Flags win over the
// environment, which wins over the file.
func applyConfig(cmd *cobra.Command) error {
	fileValues := map[string]any{}
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv(envName("config"))
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return usagef("cannot read --config %s: %v", path, errors.Unwrap(err))
		}
		if err := yaml.Unmarshal(data, &fileValues); err != nil {
			return usagef("--config %s is not valid YAML: %v", path, err)
		}
	}
	known := map[string]bool{}
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		known[f.Name] = true
		if f.Changed || firstErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := setFlag(f, v); err != nil {
				firstErr = usagef("%s=%q: %v", envName(f.Name), v, err)
			}
			markSource(f, sourceEnv)
			return
		}
		v, ok := fileValues[f.Name]
		if !ok {
			v, ok = fileValues[strings.ReplaceAll(f.Name, "-", "_")]
		}
		if ok {
			if err := setFlag(f, yamlString(v)); err != nil {
				firstErr = usagef("%s: key %q: %v", path, f.Name, err)
			}
			markSource(f, sourceFile)
		}
	})
	if firstErr != nil {
		return firstErr
	}
	for k := range fileValues {
		if !known[k] && !known[strings.ReplaceAll(k, "_", "-")] {
			return usagef("%s: unknown key %q; the keys are the flag names of %q", path, k, cmd.CommandPath())
		}
	}
	return applyDBPassword(cmd.Flags())
}

// setFlag sets a flag from text; list flags take comma-separated values.
func setFlag(f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		var items []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		return sv.Replace(items)
	}
	return f.Value.Set(v)
}

// yamlString turns a YAML scalar or list into flag text.
func yamlString(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// Where a flag's value came from, as /settings shows it.
const (
	sourceFlag    = "flag"
	sourceEnv     = "environment"
	sourceFile    = "file"
	sourceDefault = "default"
	sourceAnnot   = "certmint-source"
)

// markSource notes on f that applyConfig set it from the environment or
// the file (pflag's Changed only means the command line).
func markSource(f *pflag.Flag, source string) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[sourceAnnot] = []string{source}
}

// flagSources says for every flag of fs where its value came from.
func flagSources(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		switch {
		case f.Changed:
			out[f.Name] = sourceFlag
		case len(f.Annotations[sourceAnnot]) > 0:
			out[f.Name] = f.Annotations[sourceAnnot][0]
		default:
			out[f.Name] = sourceDefault
		}
	})
	return out
}
