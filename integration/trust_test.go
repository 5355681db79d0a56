package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/truststore"
)

// trustProbe is a Java client with the JDK's default trust: no trust
// store is configured, so it trusts what the JDK's cacerts holds.
const trustProbe = `import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class TrustProbe {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().connectTimeout(java.time.Duration.ofSeconds(10)).build();
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(args[0])).build(),
            HttpResponse.BodyHandlers.ofString());
        System.out.println(r.statusCode());
    }
}
`

// systemTrustPaths are the files the system and Java stores live in on
// this machine: what a trust test may change and must put back.
func systemTrustPaths() []string {
	paths := []string{"/usr/local/share/ca-certificates", "/etc/ssl/certs", "/etc/ca-certificates.conf",
		"/var/lib/ca-certificates-java", "/etc/pki/ca-trust"}
	homes, _ := filepath.Glob("/usr/lib/jvm/*")
	if h := os.Getenv("JAVA_HOME"); h != "" {
		homes = append(homes, h)
	}
	for _, h := range homes {
		if ks, err := filepath.EvalSymlinks(filepath.Join(h, "lib/security/cacerts")); err == nil &&
			!strings.HasPrefix(ks, "/etc/ssl/certs/") {
			paths = append(paths, ks)
		}
	}
	return paths
}

// needTrustTools skips (fails under CI) without root or a tool the trust
// test drives.
func needTrustTools(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the system store needs it)")
	}
	for _, tool := range []string{"update-ca-certificates", "keytool", "java", "curl", "certutil"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				missing = append(missing, tool)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "trust test needs " + strings.Join(missing, ", ") + " (apt-get install ca-certificates-java openjdk-17-jdk-headless curl libnss3-tools)"
	if isCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// clientEnv is the environment of a real user's process: the variables
// that point curl and OpenSSL at a fixed bundle are dropped, so curl uses
// the system store.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// probes asks curl and Java (each with its default trust) for the ACME
// directory, and certutil for the root's nickname.
type probes struct {
	t       *testing.T
	url     string
	javaSrc string
	nssDir  string
	nick    string
}

func (p probes) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = clientEnv()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// trusted is what each client should make of the server.
type trusted struct{ curl, java, nss bool }

var (
	trustedByAll  = trusted{true, true, true}
	trustedByNone = trusted{}
)

// expect checks what curl, Java and certutil make of the root.
func (p probes) expect(want trusted, when string) {
	p.t.Helper()
	out, err := p.run("curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", p.url)
	if ok := err == nil && out == "200"; ok != want.curl {
		p.t.Errorf("%s: curl trusted=%v, want %v: %v %s", when, ok, want.curl, err, out)
	}
	out, err = p.run("java", p.javaSrc, p.url)
	if ok := err == nil && strings.HasSuffix(out, "200"); ok != want.java {
		p.t.Errorf("%s: Java HttpClient trusted=%v, want %v: %v %s", when, ok, want.java, err, lastLines([]byte(out), 3))
	} else if !want.java && !strings.Contains(out, "PKIX") {
		p.t.Errorf("%s: Java failed for another reason than trust: %s", when, lastLines([]byte(out), 3))
	}
	out, err = p.run("certutil", "-L", "-d", "sql:"+p.nssDir)
	if err != nil {
		p.t.Fatalf("certutil -L: %v %s", err, out)
	}
	if ok := strings.Contains(out, p.nick); ok != want.nss {
		p.t.Errorf("%s: certutil -L lists the root=%v, want %v:\n%s", when, ok, want.nss, out)
	}
}

// guardTrustStores snapshots the system and Java stores and restores them
// when the test ends, pass or fail. It returns the paths and the state a
// test should find again after an uninstall.
func guardTrustStores(t *testing.T) ([]string, treeSnapshot) {
	t.Helper()
	paths := systemTrustPaths()
	original := snapshotTrees(t, paths...)
	t.Cleanup(func() {
		original.restore(t, paths...)
		if d := original.diff(snapshotTrees(t, paths...)); len(d) > 0 {
			t.Errorf("stores not restored: %v", d)
		}
	})
	// A machine's store may not be in the state update-ca-certificates
	// keeps (this one had a regular file where it keeps a symlink, and a
	// root not yet in Java's cacerts): any run of it changes that. Settle
	// it first, so the comparisons see certmint's changes only.
	if out, err := exec.Command("update-ca-certificates").CombinedOutput(); err != nil {
		t.Fatalf("update-ca-certificates: %v %s", err, out)
	}
	before := snapshotTrees(t, paths...)
	if d := original.diff(before); len(d) > 0 {
		t.Logf("update-ca-certificates settled the store first: %v", d)
	}
	return paths, before
}

// newNSSHome is a home directory with an empty NSS database, as Chromium
// leaves in ~/.pki/nssdb.
func newNSSHome(t *testing.T, dir string) (home, nssDir string) {
	t.Helper()
	home = filepath.Join(dir, "home")
	nssDir = filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nssDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+nssDir, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("create NSS db: %v %s", err, out)
	}
	return home, nssDir
}

// TestTrustInstallUninstall: after `trust install --root`, curl and a
// Java HttpClient with their default trust reach the server and certutil
// lists the root; after `uninstall` all three refuse again, and the system
// and Java stores are byte for byte what they were. Every store touched is
// put back even when the test fails.
func TestTrustInstallUninstall(t *testing.T) {
	needTrustTools(t)
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	home, nssDir := newNSSHome(t, dir)
	rootFile := filepath.Join(dir, "root.pem")
	javaSrc := filepath.Join(dir, "TrustProbe.java")
	for name, data := range map[string]string{rootFile: string(s.RootPEM), javaSrc: trustProbe} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fp := rootFingerprint(t, s)
	p := probes{t: t, url: s.DirectoryURL(), javaSrc: javaSrc, nssDir: nssDir, nick: truststore.EntryName(fp)}
	env := []string{"HOME=" + home}

	paths, before := guardTrustStores(t)

	p.expect(trustedByNone, "before install")

	// Bad usage: one line, exit 2, nothing written.
	for _, args := range [][]string{
		{"trust", "install"},
		{"trust", "install", "--root", rootFile, "--server", s.DirectoryURL()},
		{"trust", "install", "--server", s.DirectoryURL(), "--root-fingerprint", "abc"},
		{"trust", "uninstall", "--server", s.DirectoryURL()},
		{"trust", "install", "--root", filepath.Join(dir, "missing.pem")},
	} {
		_, stderr, code := runCLI(t, env, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 and one line: %q", args, code, stderr)
		}
	}
	if d := before.diff(snapshotTrees(t, paths...)); len(d) > 0 {
		t.Fatalf("bad usage wrote to the stores: %v", d)
	}

	start := time.Now()
	stdout, stderr, code := runCLI(t, env, "trust", "install", "--root", rootFile)
	t.Logf("trust install in %s:\n%s", time.Since(start).Round(time.Millisecond), stdout)
	if code != 0 {
		t.Fatalf("trust install: exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, store := range []string{"system ", "java ", "nss " + nssDir} {
		if !strings.Contains(stdout, store) || !strings.Contains(stdout, fp) {
			t.Errorf("install did not report the %sstore:\n%s", store, stdout)
		}
	}
	p.expect(trustedByAll, "after install")

	stdout, _, code = runCLI(t, env, "trust", "status")
	if code != 0 || strings.Count(stdout, "trusts ") < 3 || !strings.Contains(stdout, fp) {
		t.Errorf("trust status: exit %d:\n%s", code, stdout)
	}
	// A second install changes nothing.
	stdout, _, code = runCLI(t, env, "trust", "install", "--root", rootFile)
	if code != 0 || strings.Contains(stdout, "added") {
		t.Errorf("second install: exit %d:\n%s", code, stdout)
	}

	// Uninstall through the server's bundle, trusted by the pin.
	start = time.Now()
	stdout, stderr, code = runCLI(t, env, "trust", "uninstall", "--server", s.DirectoryURL(), "--root-fingerprint", fp)
	t.Logf("trust uninstall in %s:\n%s", time.Since(start).Round(time.Millisecond), stdout)
	if code != 0 || strings.Count(stdout, "removed "+truststore.EntryName(fp)) != 2 {
		t.Fatalf("trust uninstall: exit %d: %s\n%s", code, stderr, stdout)
	}
	p.expect(trustedByNone, "after uninstall")
	sameStores(t, before, snapshotTrees(t, paths...), "install + uninstall")

	// On Debian the system store reaches Java's cacerts through
	// ca-certificates-java (above, Java "already trusts" the root). Alone,
	// --java puts it there with keytool, and takes it out again.
	for _, step := range []struct {
		cmd  string
		want trusted
	}{{"install", trusted{java: true}}, {"uninstall", trustedByNone}} {
		stdout, stderr, code := runCLI(t, env, "trust", step.cmd, "--java", "--root", rootFile)
		if code != 0 || !strings.Contains(stdout, "java ") || strings.Contains(stdout, "system ") {
			t.Fatalf("trust %s --java: exit %d: %s\n%s", step.cmd, code, stderr, stdout)
		}
		p.expect(step.want, "after "+step.cmd+" --java")
	}
	sameStores(t, before, snapshotTrees(t, paths...), "install + uninstall --java")
}

// sameStores fails unless every file of the system and Java stores is as
// before. A JDK keystore whose bytes differ passes only if it holds the
// same entries, each byte for byte (see jksEntries); that is logged.
func sameStores(t *testing.T, before, after treeSnapshot, what string) {
	t.Helper()
	for _, d := range before.diff(after) {
		p := strings.TrimPrefix(d, "changed ")
		if p != d && filepath.Base(p) == "cacerts" {
			was, err1 := jksEntries(before[p].data)
			now, err2 := jksEntries(after[p].data)
			if err1 == nil && err2 == nil && strings.Join(was, "\n") == strings.Join(now, "\n") {
				t.Logf("%s: %s holds the same %d entries, each byte for byte, in another order", what, p, len(now))
				continue
			}
			t.Errorf("%s changed the entries of %s: %v %v\nbefore %d: %v\nafter %d: %v", what, p, err1, err2,
				len(was), missingFrom(was, now), len(now), missingFrom(now, was))
			continue
		}
		t.Errorf("%s left the system or Java store changed: %s", what, d)
	}
}

// missingFrom lists the items of a not in b.
func missingFrom(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// TestTrustWithoutPrivilege: an unprivileged user gets one line for each
// store it may not change, its own NSS database still gets the root, and
// the exit status is 1.
func TestTrustWithoutPrivilege(t *testing.T) {
	needTrustTools(t)
	s := StartServer(t, ServerOptions{})
	// A directory the user nobody can read, and a home it owns.
	dir, err := os.MkdirTemp("", "certmint-trust-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home, nssDir := newNSSHome(t, dir)
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	const nobody = 65534
	for _, p := range []string{home, filepath.Join(home, ".pki"), nssDir} {
		_ = os.Chown(p, nobody, nobody)
	}
	entries, _ := os.ReadDir(nssDir)
	for _, e := range entries {
		_ = os.Chown(filepath.Join(nssDir, e.Name()), nobody, nobody)
	}
	paths := systemTrustPaths()
	before := snapshotTrees(t, paths...)
	t.Cleanup(func() { before.restore(t, paths...) })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "trust", "install", "--root", rootFile)
	cmd.Env = append(clientEnv(), "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != 1 || !strings.Contains(stdout.String(), "nss "+nssDir+": added") {
		t.Fatalf("as nobody: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	var system, java int
	for _, l := range lines {
		if strings.Contains(l, "system ") && strings.Contains(l, "permission denied") {
			system++
		}
		if strings.Contains(l, "java ") && strings.Contains(l, "permission denied") {
			java++
		}
	}
	if system != 1 || java < 1 || len(lines) != system+java+1 {
		t.Errorf("want one line per store without privilege and a summary, got:\n%s", stderr.String())
	}
	if d := before.diff(snapshotTrees(t, paths...)); len(d) > 0 {
		t.Errorf("an unprivileged run changed the stores: %v", d)
	}
}
