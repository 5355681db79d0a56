package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestServeDefaults runs `certmint serve` with no flags in an empty
// directory: it must come up on the defaults (:8443, :8880, SQLite in
// ./certmint-data) and print the admin password once.
func TestServeDefaults(t *testing.T) {
	for _, port := range []int{8443, 8444, 8880} {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Skipf("default port %d is taken on this machine: %v", port, err)
		} else {
			ln.Close()
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := insecureClient()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("https://127.0.0.1:8443/acme/directory")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve with no flags did not come up: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range []string{"ca/root.pem", "ca/intermediate.key", "certmint.db", "tls/server.pem", "initial-admin-password"} {
		if _, err := os.Stat(filepath.Join(dir, "certmint-data", f)); err != nil {
			t.Errorf("first start did not create %s: %v", f, err)
		}
	}
}

// TestRestartKeepsState restarts a server on the same data directory: the
// CA, the accounts and the TLS identity survive.
func TestRestartKeepsState(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &acme.Client{Key: newAccountKey(t, "ec"), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	acct, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	tlsBefore := serverCertDER(t, s.Port)
	s.Stop()
	s.Start()
	root, err := os.ReadFile(filepath.Join(s.Data, "ca", "root.pem"))
	if err != nil || string(root) != string(s.RootPEM) {
		t.Fatalf("root changed across restart: %v", err)
	}
	if string(serverCertDER(t, s.Port)) != string(tlsBefore) {
		t.Fatal("the server's TLS certificate changed across restart")
	}
	// The restarted server still trusts our root-based client and knows
	// the account.
	fresh := &acme.Client{Key: client.Key, DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
	got, err := fresh.GetReg(ctx, "")
	if err != nil || got.URI != acct.URI {
		t.Fatalf("account after restart: %v %+v", err, got)
	}
}

func serverCertDER(t testing.TB, port int) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// TestBadConfiguration: each bad setting stops start-up with exit status 2
// and one line that names it, and leaves nothing half-written; a port in
// use too (TestBadListeners has more of those).
func TestBadConfiguration(t *testing.T) {
	tmp := t.TempDir()
	aFile := filepath.Join(tmp, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o644)

	encrypted := filepath.Join(tmp, "encrypted")
	s := StartServer(t, ServerOptions{Data: encrypted, Env: []string{"CERTMINT_CA_PASSPHRASE=right horse battery"}})
	s.Stop()

	running := StartServer(t, ServerOptions{})

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name     string
		args     []string
		env      []string
		code     int
		mention  string
		noCreate string // a path that must not exist afterwards
	}{
		{"fail/unwritable-data-dir", []string{"--data", filepath.Join(aFile, "data")}, nil, 2, "--data", ""},
		{"fail/bad-dsn-scheme", []string{"--data", filepath.Join(tmp, "d1"), "--db", "mysql://x"}, nil, 2, "--db", filepath.Join(tmp, "d1")},
		{"fail/unreachable-postgres", []string{"--data", filepath.Join(tmp, "d2"), "--db", "postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=2"}, nil, 2, "database", filepath.Join(tmp, "d2")},
		{"fail/standby-session-attrs", []string{"--data", filepath.Join(tmp, "d8"), "--db", "postgres://u:secretpw@127.0.0.1:1,127.0.0.1:2/db?target_session_attrs=standby"}, nil, 2, "target_session_attrs=standby", filepath.Join(tmp, "d8")},
		{"fail/audit-settle-below-statement-timeout", []string{"--data", filepath.Join(tmp, "d9"), "--audit-seal-settle", "20s"}, nil, 2, "--audit-seal-settle", filepath.Join(tmp, "d9")},
		{"fail/wrong-passphrase", []string{"--data", encrypted}, []string{"CERTMINT_CA_PASSPHRASE=wrong"}, 2, "CERTMINT_CA_PASSPHRASE", ""},
		{"fail/missing-passphrase", []string{"--data", encrypted}, []string{"CERTMINT_CA_PASSPHRASE="}, 2, "CERTMINT_CA_PASSPHRASE", ""},
		{"fail/bad-listen", []string{"--data", filepath.Join(tmp, "d3"), "--listen", "nonsense"}, nil, 2, "--listen", filepath.Join(tmp, "d3")},
		{"fail/bad-port-env", []string{"--data", filepath.Join(tmp, "d4")}, []string{"CERTMINT_HTTP01_PORT=http"}, 2, "CERTMINT_HTTP01_PORT", filepath.Join(tmp, "d4")},
		{"fail/unknown-flag", []string{"--no-such-flag"}, nil, 2, "--no-such-flag", ""},
		{"fail/second-server-on-sqlite", []string{"--data", running.Data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", ""}, nil, 2, "another certmint serve", ""},
		{"fail/bad-metrics-listen-env", []string{"--data", filepath.Join(tmp, "d6")}, []string{"CERTMINT_METRICS_LISTEN=nonsense"}, 2, "--metrics-listen", filepath.Join(tmp, "d6")},
		{"fail/metrics-port-in-use", []string{"--data", filepath.Join(tmp, "d7"), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", "", "--metrics-listen", busy.Addr().String()}, nil, 2, "--metrics-listen " + busy.Addr().String(), ""},
		{"fail/port-in-use", []string{"--data", filepath.Join(tmp, "d5"), "--listen", busy.Addr().String(), "--admin-listen", "127.0.0.1:0"}, nil, 2, busy.Addr().String(), filepath.Join(tmp, "d5")},
	}
	// Ports the server chooses, so the defaults (:8443 ...) being taken on
	// this machine cannot mask the error under test; a case's own
	// --listen comes later and wins.
	anyPorts := []string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", ""}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.env, append(anyPorts, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.mention) {
				t.Fatalf("last line %q does not mention %q; stderr:\n%s", last, tc.mention, stderr)
			}
			if strings.Contains(stderr, "secretpw") || strings.Contains(stderr, "right horse") {
				t.Fatalf("a secret reached stderr:\n%s", stderr)
			}
			if tc.noCreate != "" {
				if _, err := os.Stat(tc.noCreate); err == nil {
					t.Fatalf("%s was left behind", tc.noCreate)
				}
			}
		})
	}
}
