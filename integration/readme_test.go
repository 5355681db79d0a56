package integration

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickStartInfo marks the README's code blocks that TestReadmeQuickStart
// runs: ```sh quickstart (GitHub highlights them as sh).
const quickStartInfo = "```sh quickstart"

// readmeQuickStart returns the commands of the README's marked blocks,
// one slice per block, continuation lines joined.
func readmeQuickStart(t *testing.T) [][]string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var cur []string
	in, pending := false, ""
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == quickStartInfo:
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			if l, ok := strings.CutSuffix(line, "\\"); ok {
				pending += l
				continue
			}
			if cmd := strings.TrimSpace(pending + line); cmd != "" {
				cur = append(cur, cmd)
			}
			pending = ""
		}
	}
	if in {
		t.Fatal("README.md: a quickstart block is not closed")
	}
	return blocks
}

// TestReadmeQuickStart runs the README's quick start and first
// certificate as a newcomer would, in a fresh directory standing for the
// clone: `make run` (the built binary with the same flags), stopped and
// started again with the README's ARGS, then each client block exactly as
// written. Only what a test must change is changed: the server listens
// on port 0 of 127.0.0.1 instead of :8443/:8444/:8880 (and reports its
// ports with --ready-file), and in the commands the README's 8443 becomes
// the port it bound and 5002 a port reserved for the clients.
// certbot, the lego command and `certmint agent` must each come back with
// a certificate for their name that chains to the server's root.
//
// `make test` and `make demo` are not run here: `make test` is the suite
// this test is part of, and TestMakeDemo runs `make demo`.
func TestReadmeQuickStart(t *testing.T) {
	checkMakeRun(t)
	blocks := readmeQuickStart(t)
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d %q blocks, want the quick start and the first certificate", len(blocks), quickStartInfo)
	}

	clone := t.TempDir()
	if err := os.MkdirAll(filepath.Join(clone, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(clone, "bin", "certmint")); err != nil {
		t.Fatal(err)
	}
	// The clients the README names, on PATH as a user has them.
	tools := t.TempDir()
	for name, path := range map[string]string{"lego": legoCLI(t), "certbot": certbotPath(t)} {
		if err := os.Symlink(path, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (apt-get install openssl)")
	}
	// 5002 is where the clients answer http-01, reserved for them; 8443
	// is the ACME port the server reports after binding port 0.
	ports := map[string]int{"5002": freePort(t)}
	ported := regexp.MustCompile(`\b(8443|5002)\b`)
	substitute := func(cmd string) string {
		return ported.ReplaceAllStringFunc(cmd, func(p string) string { return strconv.Itoa(ports[p]) })
	}

	var server *readmeServer
	defer func() { server.stop() }()
	exempt := map[string]string{
		"make test": "the suite this test is part of",
		"make demo": "run by TestMakeDemo",
	}
	var clients []string
	for _, block := range blocks {
		var script []string
		for _, cmd := range block {
			word := strings.Fields(cmd)
			if word[0] != "make" {
				script = append(script, cmd)
				continue
			}
			target := strings.Join(word[:2], " ")
			if why, ok := exempt[target]; ok {
				t.Logf("not run: %s (%s)", target, why)
				delete(exempt, target)
				continue
			}
			if target != "make run" {
				t.Fatalf("README quick start runs %q, which this test does not know how to run", cmd)
			}
			// What the user does: Ctrl-C the running server, start again.
			server.stop()
			server = startReadmeServer(t, clone, makeRunArgs(t, cmd), substitute)
			ports["8443"] = server.acmePort
		}
		if len(script) == 0 {
			continue
		}
		if server == nil {
			t.Fatalf("the README runs %q before any `make run`", script[0])
		}
		text := strings.Join(script, "\n")
		clients = append(clients, strings.Fields(script[0])[0])
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-e", "-c", substitute(text))
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "PATH="+tools+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README block failed: %v\n$ %s\n%s\nserver:\n%s", err, substitute(text), out, server.output())
		}
		t.Logf("$ %s\n%s", substitute(text), out)
	}
	for target := range exempt {
		t.Errorf("the README's quick start lacks %q", target)
	}

	// Each client's certificate, where the README's commands put it.
	roots := x509.NewCertPool()
	rootPEM, err := os.ReadFile(filepath.Join(clone, "certmint-data", "ca", "root.pem"))
	if err != nil || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("the server's root: %v", err)
	}
	for _, want := range []struct{ client, name, file string }{
		{"certbot", "app.localhost", ".certbot/live/app.localhost/fullchain.pem"},
		{"lego", "api.localhost", ".lego/certificates/api.localhost.crt"},
		{"certmint agent", "svc.localhost", "svc-tls/fullchain.pem"},
	} {
		chain, err := os.ReadFile(filepath.Join(clone, want.file))
		if err != nil {
			t.Errorf("%s: no certificate: %v", want.client, err)
			continue
		}
		leaf := parseLeaf(t, chain)
		inter := x509.NewCertPool()
		inter.AppendCertsFromPEM(chain)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: want.name}); err != nil {
			t.Errorf("%s: the certificate in %s does not verify for %s against the server's root: %v", want.client, want.file, want.name, err)
		}
	}
	for _, c := range []string{"REQUESTS_CA_BUNDLE=certmint-data/ca/root.pem", "LEGO_CA_CERTIFICATES=certmint-data/ca/root.pem", "bin/certmint"} {
		if !slices.Contains(clients, c) {
			t.Errorf("no first-certificate block starts with %s; clients run: %v", c, clients)
		}
	}
}

// checkMakeRun checks the translation of `make run` this test makes:
// the Makefile's recipe is the built binary's serve with ARGS.
func checkMakeRun(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^run:.*\n\t\$\(BIN\)/certmint serve \$\(ARGS\)\s*$`).Match(raw) {
		t.Fatal("the Makefile's run target is no longer `$(BIN)/certmint serve $(ARGS)`; update TestReadmeQuickStart's translation of `make run`")
	}
}

// makeRunArgs is the ARGS of a `make run ARGS="..."` line.
func makeRunArgs(t *testing.T, cmd string) []string {
	t.Helper()
	m := regexp.MustCompile(`^make run(?:\s+ARGS="([^"]*)")?\s*(?:#.*)?$`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("cannot read the make run line %q", cmd)
	}
	return strings.Fields(m[1])
}

// readmeServer is `make run` in the clone.
type readmeServer struct {
	cmd      *exec.Cmd
	out      *lockedBuffer
	done     chan struct{}
	acmePort int
}

// startReadmeServer runs `certmint serve ARGS` in dir, as `make run`
// does there, with its listeners on port 0 of 127.0.0.1 (not the
// defaults :8443, :8444 and :8880), and waits for the directory at the
// port it reports in its --ready-file.
func startReadmeServer(t *testing.T, dir string, args []string, substitute func(string) string) *readmeServer {
	t.Helper()
	full := []string{"serve"}
	for _, a := range args {
		full = append(full, substitute(a))
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	full = append(full, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", "127.0.0.1:0", "--ready-file", ready)
	s := &readmeServer{cmd: exec.Command(binary, full...), out: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	client := insecureClient()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-s.done:
			t.Fatalf("`certmint %s` exited:\n%s", strings.Join(full, " "), s.output())
		default:
		}
		var r readyReport
		data, err := os.ReadFile(ready)
		if err != nil || json.Unmarshal(data, &r) != nil {
			continue
		}
		ap, err := netip.ParseAddrPort(r.Listen)
		if err != nil {
			t.Fatalf("--ready-file: listen %q: %v", r.Listen, err)
		}
		s.acmePort = int(ap.Port())
		if resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/acme/directory", s.acmePort)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
	}
	s.stop()
	t.Fatalf("`certmint %s` did not answer within 30s:\n%s", strings.Join(full, " "), s.output())
	return nil
}

// stop is Ctrl-C: SIGINT, then wait.
func (s *readmeServer) stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *readmeServer) output() string {
	if s == nil {
		return ""
	}
	return s.out.String()
}

// TestReadmeAndDocsLinks: the README stays short (the rest is in docs/),
// and every relative link of the README and docs/ names a file that
// exists and, with #anchor, a heading of that file.
func TestReadmeAndDocsLinks(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n >= 200 {
		t.Errorf("README.md has %d lines; keep it under 200 and move detail to docs/", n)
	}
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
			}
			body, err := os.ReadFile(resolved)
			if err != nil {
				t.Errorf("%s links %s: %v", file, target, err)
				continue
			}
			if anchor != "" && !slices.Contains(headingAnchors(string(body)), anchor) {
				t.Errorf("%s links %s, but %s has no heading with that anchor", file, target, resolved)
			}
		}
	}
}

// headingAnchors are the anchors GitHub gives a Markdown file's headings:
// lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(md string) []string {
	var out []string
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	for _, line := range strings.Split(md, "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			out = append(out, strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-"))
		}
	}
	return out
}
