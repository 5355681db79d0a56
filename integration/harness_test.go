// Package integration drives the real certmint binary over loopback with
// real clients: the lego library, x/crypto/acme, certbot, Chromium.
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	legolog "github.com/go-acme/lego/v4/log"

	"github.com/certmint/certmint/tools/freeport"
	"github.com/certmint/certmint/tools/pgtest"
)

// binary is the certmint executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	// A fixed path per checkout, overwritten by each run, so nothing piles
	// up in /tmp and two checkouts testing at once do not swap binaries.
	wd, _ := os.Getwd()
	sum := sha256.Sum256([]byte(wd))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("certmint-integration-bin-%x", sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "certmint")
	build := exec.Command("go", "build", "-o", binary, "../cmd/certmint")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build certmint:", err)
		os.Exit(1)
	}
	legolog.Logger = log.New(io.Discard, "", 0) // lego narrates every step
	pgtest.Main(m)                              // runs the tests, stops the shared Postgres, exits
}

// freePort reserves a TCP port on 127.0.0.1 for a process the test starts
// that cannot report a port it chose itself (an ACME client answering
// http-01 on the port the server validates on, an agent's metrics). The
// port lies below the kernel's ephemeral range, so no port-0 bind or
// outgoing connection takes it, and it stays locked against other test
// processes until the test ends (tools/freeport). Servers the test starts
// bind port 0 instead and report their address (see Server.Start).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Release)
	return p.N
}

// ServerOptions configure StartServer.
type ServerOptions struct {
	DB   string   // "" for SQLite in the data dir
	Data string   // "" for a fresh temp dir
	Args []string // extra flags
	Env  []string // extra environment
	// SystemResolver leaves out --dns-resolver, so validation resolves
	// names as the host does (/etc/hosts, then /etc/resolv.conf).
	SystemResolver bool
	// Hostnames, when set, is --hostname with --hostname-only (the
	// server's defaults otherwise); TLSName, when set, is the name clients
	// check the server's certificate for while still dialling 127.0.0.1.
	Hostnames string
	TLSName   string
	// Metrics turns on --metrics-listen (a port the server chooses, kept
	// across restarts); Server.MetricsAddr is where it listens.
	Metrics bool
	// MakeRun starts the server as `make run` does: `certmint serve` in a
	// fresh directory (Data is DIR/certmint-data) with no flags but the
	// ports and --ready-file; so the system resolver, log level info,
	// tls-alpn-01 on 443. Args and the other options are ignored.
	MakeRun bool
}

// Server is a certmint process under test. Port, AdminPort, CRLPort and
// MetricsPort left 0 are chosen by the server on its first start (it binds
// port 0 and writes the real ports to its --ready-file); later restarts
// keep them. HTTPPort and TLSPort are where the test's clients answer
// challenges, so they are reserved up front (freePort).
type Server struct {
	t           testing.TB
	Data        string
	Port        int
	AdminPort   int
	HTTPPort    int // http-01 validation port
	TLSPort     int // tls-alpn-01 validation port
	CRLPort     int // plain-HTTP CRL
	MetricsPort int // with ServerOptions.Metrics
	DNS         *DNSServer
	RootPEM     []byte
	Roots       *x509.CertPool
	opts        ServerOptions

	ready  string // --ready-file
	mu     sync.Mutex
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

// DirectoryURL is the ACME directory of the server.
func (s *Server) DirectoryURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d/acme/directory", s.Port)
}

// AdminURL is the console's base URL.
func (s *Server) AdminURL() string { return fmt.Sprintf("https://127.0.0.1:%d", s.AdminPort) }

// MetricsAddr is the server's --metrics-listen address (ServerOptions.Metrics).
func (s *Server) MetricsAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.MetricsPort) }

// StartServer runs `certmint serve` on loopback ports it chooses itself,
// with a DNS server of the test's own, and waits until the directory
// answers.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	switch {
	case o.MakeRun && o.Data == "":
		o.Data = filepath.Join(t.TempDir(), "certmint-data")
	case o.MakeRun && filepath.Base(o.Data) != "certmint-data":
		t.Fatalf("ServerOptions.MakeRun needs Data named certmint-data, got %s", o.Data)
	case o.Data == "":
		o.Data = filepath.Join(t.TempDir(), "data")
	}
	s := &Server{t: t, Data: o.Data, opts: o, HTTPPort: freePort(t), TLSPort: freePort(t), DNS: StartDNS(t)}
	s.Start()
	t.Cleanup(s.Stop)
	root, err := os.ReadFile(filepath.Join(s.Data, "ca", "root.pem"))
	if err != nil {
		t.Fatalf("read root: %v", err)
	}
	s.RootPEM = root
	s.Roots = x509.NewCertPool()
	s.Roots.AppendCertsFromPEM(root)
	return s
}

// Args are the command-line arguments the server runs with.
func (s *Server) Args() []string {
	if s.opts.MakeRun {
		return []string{"serve", "--listen", loopback(s.Port), "--admin-listen", loopback(s.AdminPort),
			"--crl-listen", loopback(s.CRLPort), "--http01-port", strconv.Itoa(s.HTTPPort), "--ready-file", s.ready}
	}
	args := []string{"serve", "--data", s.Data,
		"--listen", loopback(s.Port),
		"--admin-listen", loopback(s.AdminPort),
		"--http01-port", strconv.Itoa(s.HTTPPort),
		"--tlsalpn01-port", strconv.Itoa(s.TLSPort),
		"--crl-listen", loopback(s.CRLPort),
		"--log-level", "warn"}
	if s.ready != "" {
		args = append(args, "--ready-file", s.ready)
	}
	if s.opts.Metrics {
		args = append(args, "--metrics-listen", loopback(s.MetricsPort))
	}
	if !s.opts.SystemResolver {
		args = append(args, "--dns-resolver", s.DNS.Addr)
	}
	if s.opts.Hostnames != "" {
		// A constrained CA may not name localhost in the server's own
		// certificate, so the test's names replace the defaults.
		args = append(args, "--hostname", s.opts.Hostnames, "--hostname-only")
	}
	if s.opts.DB != "" {
		args = append(args, "--db", s.opts.DB)
	}
	return append(args, s.opts.Args...)
}

// loopback is 127.0.0.1:port; port 0 lets the server choose.
func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Start (re)starts the process, learns the ports it bound from its
// --ready-file, and waits for the directory.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	if s.ready == "" {
		s.ready = filepath.Join(s.t.TempDir(), "ready.json")
	}
	_ = os.Remove(s.ready) // a stale report would name the last run's ports
	cmd := exec.Command(binary, s.Args()...)
	cmd.Env = append(os.Environ(), s.opts.Env...)
	if s.opts.MakeRun {
		cmd.Dir = filepath.Dir(s.Data) // serve's default --data is ./certmint-data
	}
	s.stderr = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("start certmint: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() { cmd.Wait(); close(done) }()
	s.mu.Unlock()
	if err := s.waitReportedPorts(20 * time.Second); err != nil {
		s.t.Fatalf("certmint did not come up: %v\n%s", err, s.Output())
	}
	if err := s.waitReady(20 * time.Second); err != nil {
		s.t.Fatalf("certmint did not come up: %v\n%s", err, s.Output())
	}
}

// readyReport is the part of `certmint serve --ready-file` the harness
// reads: the addresses the server bound.
type readyReport struct {
	Listen        string `json:"listen"`
	AdminListen   string `json:"admin_listen"`
	CRLListen     string `json:"crl_listen"`
	MetricsListen string `json:"metrics_listen"`
	DirectoryURL  string `json:"directory_url"`
	ConsoleURL    string `json:"console_url"`
	RootFile      string `json:"root_file"`
}

// waitReportedPorts waits for the --ready-file and takes the real ports
// from it, so a restart binds the same ones.
func (s *Server) waitReportedPorts(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		data, err := os.ReadFile(s.ready)
		if err == nil {
			var r readyReport
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("read %s: %w", s.ready, err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, p := range []struct {
				addr string
				port *int
			}{{r.Listen, &s.Port}, {r.AdminListen, &s.AdminPort}, {r.CRLListen, &s.CRLPort}, {r.MetricsListen, &s.MetricsPort}} {
				if p.addr == "" {
					continue
				}
				ap, err := netip.ParseAddrPort(p.addr)
				if err != nil {
					return fmt.Errorf("%s: bad address %q", s.ready, p.addr)
				}
				*p.port = int(ap.Port())
			}
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("process exited")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %s", s.ready, limit)
		}
	}
}

func (s *Server) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("process exited")
		default:
		}
		resp, err := client.Get(s.DirectoryURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s", limit)
}

// Stop ends the process with SIGTERM and waits.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the process with SIGKILL, as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Output is what the process printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stderr == nil {
		return ""
	}
	return s.stderr.String()
}

// HTTPClient trusts the server's root.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: s.TLSConfig()}}
}

// TLSConfig trusts the server's root and checks its certificate for
// ServerOptions.TLSName when set.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Roots, ServerName: s.opts.TLSName}
}

// runCLI runs the certmint binary with args and returns stdout, stderr and
// the exit code.
func runCLI(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run certmint %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// engines lists the databases every storage-touching integration test runs
// on: SQLite always, Postgres from a throwaway cluster.
func engines(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return pgtest.Start(t) },
	}
}

func isCI() bool { return strings.EqualFold(os.Getenv("CI"), "true") }

// insecureClient skips certificate checks, for probing whether a server is
// up before its root is known.
func insecureClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}
