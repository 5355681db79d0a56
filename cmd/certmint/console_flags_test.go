package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConsoleFlagErrors: bad sign-in flags stop serve with exit status 2
// before anything is created.
func TestConsoleFlagErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	for name, args := range map[string][]string{
		"no-login-at-all":  {"--local-login=false"},
		"client-no-issuer": {"--oidc-client-id", "x"},
		"issuer-no-map":    {"--oidc-issuer", "https://idp.test", "--oidc-client-id", "x"},
		"bad-role":         {"--oidc-issuer", "https://idp.test", "--oidc-client-id", "x", "--oidc-role-map", "ops=root"},
		"no-secret-file":   {"--oidc-issuer", "https://idp.test", "--oidc-client-id", "x", "--oidc-role-map", "ops=operator", "--oidc-client-secret-file", filepath.Join(dir, "none")},
	} {
		t.Run(name, func(t *testing.T) {
			if code := run(append([]string{"serve", "--data", data}, args...)); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
			if _, err := os.Stat(data); err == nil {
				t.Fatal("serve created the data directory despite bad flags")
			}
		})
	}
}

// TestFlagSources: /settings says where each value came from.
func TestFlagSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "certmint.yaml")
	os.WriteFile(file, []byte("http01-port: 1001\n"), 0o600)
	t.Setenv("CERTMINT_TLSALPN01_PORT", "2002")
	serve, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.ParseFlags([]string{"--config", file, "--listen", "127.0.0.1:3003"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(serve); err != nil {
		t.Fatal(err)
	}
	got := flagSources(serve.Flags())
	for flag, want := range map[string]string{"http01-port": "file", "tlsalpn01-port": "environment", "listen": "flag", "admin-listen": "default"} {
		if got[flag] != want {
			t.Errorf("source of --%s = %q, want %q", flag, got[flag], want)
		}
	}
}
