package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConfigPrecedence: a flag on the command line wins over CERTMINT_*,
// which wins over the --config YAML file, which wins over the default.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "certmint.yaml")
	os.WriteFile(file, []byte("http01-port: 1001\ntlsalpn01_port: 1002\nlisten: 127.0.0.1:1003\nhostname: [a.test, 10.0.0.1]\n"), 0o600)
	t.Setenv("CERTMINT_TLSALPN01_PORT", "2002")
	t.Setenv("CERTMINT_LISTEN", "127.0.0.1:2003")
	root := newRootCmd()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.ParseFlags([]string{"--config", file, "--listen", "127.0.0.1:3003"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(serve); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"http01-port":    "1001",              // file only
		"tlsalpn01-port": "2002",              // env beats file
		"listen":         "127.0.0.1:3003",    // flag beats env and file
		"hostname":       "[a.test,10.0.0.1]", // lists from YAML
		"admin-listen":   "127.0.0.1:8444",    // default
	} {
		if got := serve.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("no-such-key: 1\n"), 0o600)
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("listen: [\n"), 0o600)
	for name, args := range map[string][]string{
		"fail/unknown-key":  {"serve", "--config", bad},
		"fail/broken-yaml":  {"serve", "--config", broken},
		"fail/missing-file": {"serve", "--config", filepath.Join(dir, "none.yaml")},
	} {
		t.Run(name, func(t *testing.T) {
			if code := run(args); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
		})
	}
}
