package integration

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the test checks.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Entrypoint  stringList     `yaml:"entrypoint"`
	Command     stringList     `yaml:"command"`
	DependsOn   map[string]any `yaml:"depends_on"`
	Healthcheck *struct {
		Test stringList `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes  []string       `yaml:"volumes"`
	Networks map[string]any `yaml:"networks"`
}

// stringList is a compose list that may also be written as one string.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// TestCompose checks docker-compose.yml by construction, since Docker
// cannot run here: every certmint and mtls-demo command line it runs is
// accepted by the binaries built from this tree, start order and health
// checks are complete, and the files it references exist.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	demo := filepath.Join(t.TempDir(), "mtls-demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../cmd/mtls-demo").CombinedOutput(); err != nil {
		t.Fatalf("build mtls-demo: %v\n%s", err, out)
	}
	programs := map[string]string{"certmint": binary, "mtls-demo": demo}

	var sawServe, sawReceiver, sawSender int
	for name, svc := range cf.Services {
		if svc.Build != nil {
			if b, ok := svc.Build.(string); !ok || b != "." {
				t.Errorf("%s: build %v, want the repository root \".\"", name, svc.Build)
			}
		}
		// Which of our programs the service runs: the image's entrypoint
		// (certmint) or the one it sets.
		if svc.Image != "certmint:local" {
			continue
		}
		prog := "certmint"
		if len(svc.Entrypoint) > 0 {
			prog = filepath.Base(svc.Entrypoint[0])
			if !strings.Contains(string(dockerfile), "/usr/local/bin/") || !strings.HasPrefix(svc.Entrypoint[0], "/usr/local/bin/") {
				t.Errorf("%s: entrypoint %v is not where the Dockerfile installs the binaries", name, svc.Entrypoint)
			}
		}
		bin, ok := programs[prog]
		if !ok {
			t.Errorf("%s: runs %q, which this repository does not build", name, prog)
			continue
		}
		if len(svc.Command) == 0 {
			t.Errorf("%s: no command", name)
			continue
		}
		checkCommandLine(t, name, prog, bin, svc.Command)
		switch {
		case prog == "certmint" && svc.Command[0] == "serve":
			sawServe++
			if svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0 {
				t.Errorf("%s: certmint serve without a healthcheck", name)
			} else if !slices.ContainsFunc(svc.Healthcheck.Test, func(a string) bool { return strings.HasSuffix(a, "/readyz") }) {
				t.Errorf("%s: the healthcheck %v does not check /readyz (the directory answers even with the database down)", name, svc.Healthcheck.Test)
			}
			if !slices.ContainsFunc(svc.Command, func(a string) bool { return strings.HasPrefix(a, "--db=postgres://") }) {
				t.Errorf("%s: certmint serve without --db=postgres://...", name)
			}
			if !slices.ContainsFunc(svc.Volumes, func(v string) bool { return strings.HasPrefix(v, "ca:/data/ca") }) {
				t.Errorf("%s: the replica does not mount the shared CA volume at /data/ca", name)
			}
		case prog == "mtls-demo" && svc.Command[0] == "receiver":
			sawReceiver++
		case prog == "mtls-demo" && svc.Command[0] == "sender":
			sawSender++
		}
		if svc.Healthcheck != nil && slices.Contains(svc.Healthcheck.Test, "curl") && !strings.Contains(string(dockerfile), "curl") {
			t.Errorf("%s: the healthcheck uses curl, which the Dockerfile does not install", name)
		}
	}
	if sawServe < 2 || sawReceiver != 1 || sawSender != 1 {
		t.Errorf("want two certmint replicas, one receiver and one sender; got %d, %d, %d", sawServe, sawReceiver, sawSender)
	}
	if pg, ok := cf.Services["postgres"]; !ok || pg.Healthcheck == nil || len(pg.Healthcheck.Test) == 0 {
		t.Error("postgres: missing, or without a healthcheck")
	}
	for _, want := range []string{"./cmd/certmint", "./cmd/mtls-demo"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("Dockerfile does not build %s", want)
		}
	}

	// Start order: every dependency exists, and waiting for "healthy"
	// needs a healthcheck on the other side.
	for name, svc := range cf.Services {
		for dep, v := range svc.DependsOn {
			target, ok := cf.Services[dep]
			if !ok {
				t.Errorf("%s depends on %q, which is not a service", name, dep)
				continue
			}
			if m, ok := v.(map[string]any); ok && m["condition"] == "service_healthy" && target.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		// Volumes: bind mounts point at files of the repository, named
		// volumes are declared.
		for _, v := range svc.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("%s uses volume %q, not declared under volumes:", name, src)
			}
		}
	}

	checkNames(t, cf)
	checkHAProxy(t, cf)

	t.Run("docker-compose-config", func(t *testing.T) {
		if exec.Command("docker", "compose", "version").Run() != nil {
			t.Skip("the docker compose plugin is not installed; the file is checked by construction above")
		}
		if out, err := exec.Command("docker", "compose", "-f", "../docker-compose.yml", "config", "-q").CombinedOutput(); err != nil {
			t.Fatalf("docker compose config: %v\n%s", err, out)
		}
	})
}

// checkCommandLine runs the program with the service's arguments plus a
// help flag. Both certmint (cobra) and mtls-demo (package flag) parse
// every flag and its value before acting on the help flag, so exit 0
// means every flag exists and every value parses; an unknown flag exits 2.
func checkCommandLine(t *testing.T, service, prog, bin string, args []string) {
	t.Helper()
	help := "--help"
	if prog == "mtls-demo" {
		help = "-h"
	}
	run := func(args []string) (string, int) {
		cmd := exec.Command(bin, append(append([]string(nil), args...), help)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: run %s: %v", service, prog, err)
		}
		return string(out), 0
	}
	if out, code := run(args); code != 0 {
		t.Errorf("%s: `%s %s` is refused (exit %d):\n%s", service, prog, strings.Join(args, " "), code, lastLines([]byte(out), 3))
	}
	// The check must be able to fail: the same line with a flag that does
	// not exist is refused.
	bad := append([]string{args[0], "--no-such-flag-xyz"}, args[1:]...)
	if _, code := run(bad); code == 0 {
		t.Errorf("%s: %s accepts an unknown flag with %s; this check proves nothing", service, prog, help)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// flagValue returns the value of --name=VALUE in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// checkNames checks that the names the demo connects to resolve in the
// compose network and are in the certificates they will be shown: the
// ACME server's host is a service and in every replica's --hostname, and
// the receiver URL's host is the receiver's network alias and certificate
// name.
func checkNames(t *testing.T, cf composeFile) {
	t.Helper()
	aliases := map[string]string{} // name -> service
	for name, svc := range cf.Services {
		aliases[name] = name
		if def, ok := svc.Networks["default"].(map[string]any); ok {
			if list, ok := def["aliases"].([]any); ok {
				for _, a := range list {
					aliases[fmt.Sprint(a)] = name
				}
			}
		}
	}
	for name, svc := range cf.Services {
		if len(svc.Entrypoint) == 0 || filepath.Base(svc.Entrypoint[0]) != "mtls-demo" {
			continue
		}
		server, err := url.Parse(flagValue(svc.Command, "server"))
		if err != nil || server.Hostname() == "" {
			t.Errorf("%s: --server %q is not a URL", name, flagValue(svc.Command, "server"))
			continue
		}
		if _, ok := aliases[server.Hostname()]; !ok {
			t.Errorf("%s: --server host %q is not a service or alias", name, server.Hostname())
		}
		for rname, rsvc := range cf.Services {
			if len(rsvc.Command) > 0 && rsvc.Command[0] == "serve" &&
				!slices.Contains(strings.Split(flagValue(rsvc.Command, "hostname"), ","), server.Hostname()) {
				t.Errorf("%s: --hostname lacks %q, the name the demo reaches it by through the load balancer", rname, server.Hostname())
			}
		}
		// http-01: certmint connects to port 80 of the certificate name.
		own := flagValue(svc.Command, "name")
		if aliases[own] != name {
			t.Errorf("%s: --name %q does not resolve to this service, so http-01 cannot reach it", name, own)
		}
		if v := flagValue(svc.Command, "http01-listen"); v != ":80" {
			t.Errorf("%s: --http01-listen %q, want :80 (certmint's default --http01-port)", name, v)
		}
		if r := flagValue(svc.Command, "receiver"); r != "" {
			u, err := url.Parse(r)
			if err != nil || aliases[u.Hostname()] == "" || flagValue(cf.Services[aliases[u.Hostname()]].Command, "name") != u.Hostname() {
				t.Errorf("%s: --receiver %q is not the receiver's certificate name", name, r)
			}
		}
	}
}

// checkHAProxy checks deploy/haproxy.cfg against the compose file: every
// server is a compose service, and `haproxy -c` accepts the file when
// haproxy is installed.
func checkHAProxy(t *testing.T, cf composeFile) {
	t.Helper()
	f, err := os.Open("../deploy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	server := regexp.MustCompile(`^\s*server\s+\S+\s+([^:\s]+):(\d+)`)
	servers := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := server.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		servers++
		if _, ok := cf.Services[m[1]]; !ok {
			t.Errorf("haproxy.cfg: server %s:%s is not a compose service", m[1], m[2])
		}
	}
	if servers < 2 {
		t.Errorf("haproxy.cfg has %d servers, want the two replicas", servers)
	}
	if raw, _ := os.ReadFile("../deploy/haproxy.cfg"); !regexp.MustCompile(`(?m)^\s*http-check send .*uri /readyz\b`).Match(raw) {
		t.Error("haproxy.cfg: the replicas' health check does not GET /readyz")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Log("haproxy is not installed: skipping `haproxy -c` (apt-get install haproxy)")
		return
	}
	// The replicas' names do not resolve here; init-addr none lets the
	// check pass with them disabled, as at first start in Docker.
	if out, err := exec.Command("haproxy", "-c", "-f", "../deploy/haproxy.cfg").CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s", err, out)
	}
}

// TestDockerfileModuleStage replays the Dockerfile's module-download step
// without a Docker engine: only what the COPY lines before `go mod
// download` bring in is present, as in the image build. A go.mod replace
// pointing into this tree once broke exactly this step.
func TestDockerfileModuleStage(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "RUN" && strings.Contains(sc.Text(), "go mod download") {
			cmd := exec.Command("go", "mod", "download")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go mod download with only the files copied before it: %v\n%s", err, out)
			}
			return
		}
		if fields[0] != "COPY" || strings.HasPrefix(fields[1], "--") || len(fields) < 3 {
			continue
		}
		dst := fields[len(fields)-1]
		for _, src := range fields[1 : len(fields)-1] {
			if src == "." {
				t.Fatal("the whole tree is copied before go mod download; module caching is lost")
			}
			target := filepath.Join(dir, dst)
			if strings.HasSuffix(dst, "/") && !strings.HasSuffix(src, "/") {
				target = filepath.Join(dir, dst, filepath.Base(src))
			}
			if out, err := exec.Command("cp", "-r", filepath.Join("..", src), target).CombinedOutput(); err != nil {
				t.Fatalf("COPY %s %s: %v\n%s", src, dst, err, out)
			}
		}
	}
	t.Fatal("the Dockerfile has no `go mod download` step")
}
