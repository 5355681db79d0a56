package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/agent"
)

// rootFingerprint is the SHA-256 of the server's root DER, hex.
func rootFingerprint(t testing.TB, s *Server) string {
	t.Helper()
	block, _ := pem.Decode(s.RootPEM)
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// agentConfig is a library configuration answering http-01 on the
// server's validation port.
func agentConfig(t testing.TB, s *Server, names ...string) agent.Config {
	t.Helper()
	rootFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(rootFile, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return agent.Config{DirectoryURL: s.DirectoryURL(), RootFile: rootFile, Names: names,
		HTTP01Listen: "127.0.0.1:" + strconv.Itoa(s.HTTPPort), StateDir: filepath.Join(t.TempDir(), "state"),
		RetryMin: time.Second, RetryMax: 10 * time.Second}
}

func checkMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), fi.Mode().Perm(), want)
	}
}

func TestAgentLibraryFirstCertAndRestart(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	cfg := agentConfig(t, s, "svc.test", "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, s.Output())
	}
	t.Logf("first certificate in %s", time.Since(start).Round(time.Millisecond))
	leaf := a.Current().Leaf
	if leaf.DNSNames[0] != "svc.test" || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	opts := x509VerifyOpts(s)
	opts.Intermediates = x509.NewCertPool()
	for _, der := range a.Current().Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		t.Fatalf("leaf does not verify: %v", err)
	}
	for name, mode := range map[string]os.FileMode{"key.pem": 0o600, "account.key": 0o600, "cert.pem": 0o644,
		"chain.pem": 0o644, "fullchain.pem": 0o644, "root.pem": 0o644} {
		checkMode(t, filepath.Join(cfg.StateDir, name), mode)
	}
	account, _ := os.ReadFile(filepath.Join(cfg.StateDir, "account.json"))
	cancel()

	// A restart reuses the account and the certificate, without the
	// server's help: pin by fingerprint this time, the root is cached.
	s.Stop()
	cfg2 := cfg
	cfg2.RootFile, cfg2.RootFingerprint = "", rootFingerprint(t, s)
	b, err := agent.New(cfg2)
	if err != nil {
		t.Fatalf("restart with the server down: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if err := b.Start(ctx2); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if b.Current().Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatal("restart re-issued a certificate that was not due")
	}
	if again, _ := os.ReadFile(filepath.Join(cfg.StateDir, "account.json")); string(again) != string(account) {
		t.Fatal("restart re-registered")
	}
}

// TestAgentPinnedFingerprint bootstraps trust from the fingerprint alone.
func TestAgentPinnedFingerprint(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	cfg := agentConfig(t, s, "pinned.test")
	cfg.RootFile, cfg.RootFingerprint = "", rootFingerprint(t, s)
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(cfg.StateDir, "root.pem")); string(got) != string(s.RootPEM) {
		t.Fatalf("root.pem is not the server's root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.RootFingerprint = strings.Repeat("ab", 32)
	cfg.StateDir = t.TempDir()
	if _, err := agent.New(cfg); err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Fatalf("wrong pin: %v", err)
	}
}

// TestAgentServerDownAcrossRenewal stops the server before the renewal
// point: the agent backs off, keeps serving the valid certificate, and
// renews once the server is back.
func TestAgentServerDownAcrossRenewal(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{Args: []string{"--profile", "short=2m"}})
	cfg := agentConfig(t, s, "down.test")
	cfg.Profile = "short"
	var mu sync.Mutex
	var failures, renewals int
	renewed := make(chan struct{}, 10)
	cfg.OnError = func(error, time.Duration) { mu.Lock(); failures++; mu.Unlock() }
	cfg.OnRenew = func(*tls.Certificate) { renewed <- struct{}{} }
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-renewed
	first := a.Current().Leaf
	s.Stop()
	t.Logf("server stopped; certificate valid until %s", time.Until(first.NotAfter).Round(time.Second))
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		f := failures
		mu.Unlock()
		if f >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed renewal attempt while the server was down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a.Current().Leaf.SerialNumber.Cmp(first.SerialNumber) != 0 || time.Now().After(first.NotAfter) {
		t.Fatal("agent does not serve the still-valid certificate")
	}
	s.Start()
	select {
	case <-renewed:
		renewals++
	case <-time.After(time.Until(first.NotAfter)):
		t.Fatalf("no renewal after the server came back\n%s", s.Output())
	}
	cur := a.Current().Leaf
	if cur.SerialNumber.Cmp(first.SerialNumber) == 0 || !cur.NotAfter.After(first.NotAfter) {
		t.Fatal("current certificate is not the renewed one")
	}
	mu.Lock()
	t.Logf("%d failed attempts, then renewed %s before expiry", failures, time.Until(first.NotAfter).Round(time.Second))
	mu.Unlock()
}

func x509VerifyOpts(s *Server) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: s.Roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}

// snapshot is every file of dir with its content and modification time.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		info, _ := e.Info()
		out[e.Name()] = fmt.Sprintf("%x %s", sha256.Sum256(data), info.ModTime())
	}
	return out
}

// checkEventLine checks the agent's one line for an action: the names,
// the certificate's serial and expiry, and a next check before expiry.
func checkEventLine(t *testing.T, stdout, action string, leaf *x509.Certificate) {
	t.Helper()
	m := regexp.MustCompile(`^(\w+) names=(\S+) serial=([0-9a-f]+) expires=(\S+) next_check=(\S+)\n$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("want one %s line, got %q", action, stdout)
	}
	expires, err1 := time.Parse(time.RFC3339, m[4])
	next, err2 := time.Parse(time.RFC3339, m[5])
	if m[1] != action || m[2] != "daemon.test" || m[3] != leaf.SerialNumber.Text(16) || err1 != nil || err2 != nil ||
		!expires.Equal(leaf.NotAfter.Truncate(time.Second)) || !next.After(time.Now().Add(-time.Minute)) || !next.Before(expires) {
		t.Errorf("line %q does not describe %s of serial %s, expiring %s", stdout, action, leaf.SerialNumber.Text(16), leaf.NotAfter.UTC())
	}
}

func TestAgentDaemonOnce(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600)
	fp := rootFingerprint(t, s)
	base := []string{"agent", "--server", s.DirectoryURL(), "--out", out,
		"--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort), "--p12-password-file", pwFile, "--once"}
	args := append(append([]string{}, base...), "--root-fingerprint", fp, "--name", "daemon.test",
		"--exec", "touch "+filepath.Join(dir, "exec-ran"))
	start := time.Now()
	stdout, stderr, code := runCLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("agent --once: exit %d: %s\n%s", code, stderr, s.Output())
	}
	t.Logf("daemon --once in %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "exec-ran")); err != nil {
		t.Error("--exec did not run")
	}
	for name, mode := range map[string]os.FileMode{"cert.pem": 0o644, "chain.pem": 0o644, "fullchain.pem": 0o644,
		"key.pem": 0o600, "root.pem": 0o644, "keystore.p12": 0o600, "truststore.p12": 0o644} {
		checkMode(t, filepath.Join(out, name), mode)
	}
	read := func(n string) string { b, _ := os.ReadFile(filepath.Join(out, n)); return string(b) }
	if read("root.pem") != string(s.RootPEM) {
		t.Error("root.pem is not the server's root")
	}
	if read("fullchain.pem") != read("cert.pem")+read("chain.pem") || strings.Count(read("cert.pem"), "BEGIN CERTIFICATE") != 1 {
		t.Error("fullchain.pem is not cert.pem + chain.pem")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(out, "fullchain.pem"), filepath.Join(out, "key.pem")); err != nil {
		t.Errorf("key.pem does not match: %v", err)
	}
	leaf := parseLeaf(t, []byte(read("cert.pem")))
	if leaf.DNSNames[0] != "daemon.test" {
		t.Errorf("names %v", leaf.DNSNames)
	}
	// One line on stdout saying what it did, and nothing on stderr.
	checkEventLine(t, stdout, "obtained", leaf)
	if stderr != "" {
		t.Errorf("agent --once wrote to stderr on success: %q", stderr)
	}
	// OpenSSL 3 reads the keystore without -legacy.
	o, err := exec.Command("openssl", "pkcs12", "-in", filepath.Join(out, "keystore.p12"), "-passin", "pass:s3cret-pw", "-nokeys").CombinedOutput()
	if err != nil || strings.Count(string(o), "BEGIN CERTIFICATE") < 2 || !strings.Contains(string(o), "daemon.test") {
		t.Errorf("openssl pkcs12: %v\n%s", err, o)
	}
	if _, err := exec.LookPath("keytool"); err == nil {
		o, err := exec.Command("keytool", "-list", "-keystore", filepath.Join(out, "keystore.p12"), "-storetype", "PKCS12", "-storepass", "s3cret-pw").CombinedOutput()
		// The key's alias is the first --name, for server.ssl.key-alias.
		if err != nil || !regexp.MustCompile(`(?m)^daemon\.test, .*PrivateKeyEntry`).Match(o) {
			t.Errorf("keytool keystore: want alias daemon.test: %v\n%s", err, o)
		}
		o, err = exec.Command("keytool", "-list", "-keystore", filepath.Join(out, "truststore.p12"), "-storetype", "PKCS12", "-storepass", "s3cret-pw").CombinedOutput()
		if err != nil || !strings.Contains(string(o), "trustedCertEntry") || !strings.Contains(string(o), agent.RootAlias) {
			t.Errorf("keytool truststore: %v\n%s", err, o)
		}
	} else if isCI() {
		t.Error("keytool missing")
	}

	// A second run finds the certificate not due and changes nothing.
	before := snapshot(t, out)
	stdout, stderr, code = runCLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("second --once: exit %d: %s", code, stderr)
	}
	checkEventLine(t, stdout, "unchanged", leaf)
	if stdout, _, code := runCLI(t, nil, append(args, "--quiet")...); code != 0 || stdout != "" {
		t.Errorf("--quiet: exit %d, printed %q", code, stdout)
	}
	if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("second --once rewrote files:\n%v\n%v", before, after)
	}

	// Failures: one clear line, non-zero exit, nothing on disk overwritten.
	rootFile := filepath.Join(dir, "root-copy.pem")
	os.WriteFile(rootFile, s.RootPEM, 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong-fingerprint", []string{"--root-fingerprint", strings.Repeat("0", 64), "--name", "daemon.test"}, "fingerprint mismatch"},
		{"unreachable", []string{"--root", rootFile, "--name", "other.test", "--server", "https://127.0.0.1:1/acme/directory"}, "connection refused"},
		{"refused-name", []string{"--root-fingerprint", fp, "--name", "bad_name.test"}, "bad_name.test"},
	}
	// Bad usage is exit status 2, one line.
	if _, stderr, code := runCLI(t, nil, "agent", "--server", s.DirectoryURL(), "--name", "x.test", "--out", out); code != 2 ||
		!strings.Contains(stderr, "--root") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("missing trust: exit %d: %q", code, stderr)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, nil, append(append([]string{}, base...), c.args...)...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			t.Logf("exit %d: %s", code, stderr)
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "certmint: ") || !strings.Contains(lines[0], c.want) {
				t.Errorf("want one line with %q and a non-zero exit, got %d: %q", c.want, code, stderr)
			}
			if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("files changed:\n%v\n%v", before, after)
			}
		})
	}
}

// TestAgentDaemonMetrics runs the daemon and reads /healthz and /metrics.
func TestAgentDaemonMetrics(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	out := t.TempDir()
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(binary, "agent", "--server", s.DirectoryURL(), "--root-fingerprint", rootFingerprint(t, s),
		"--name", "metrics.test", "--out", out, "--tlsalpn01-listen", "127.0.0.1:"+strconv.Itoa(s.TLSPort),
		"--metrics-listen", metrics)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				r, _ := http.Get("http://" + metrics + "/metrics")
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				body = string(b)
				break
			}
		}
	}
	for _, want := range []string{"certmint_agent_certificate_expiry_seconds", "certmint_agent_renewals_total 1", "certmint_agent_renewal_failures_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s\n%s", want, body, stderr.String())
		}
	}
}
