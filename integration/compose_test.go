package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// Docker cannot run here (the client has no engine), so docker-compose.yml
// is checked by construction: loaded by the compose specification's own
// loader (compose-go, which also refuses undeclared volumes, secrets,
// networks and services), every certmint and mtls-demo command line run
// through the binaries built from this tree, every health check's path
// asked of a live server. The checks live in compose_check_test.go.

// loadCompose loads a compose file as `docker compose` would, relative to
// the repository root, without the caller's environment.
func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(root, file)
	}
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(root), cli.WithName("certmint-demo"))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// newComposeCheck builds mtls-demo (certmint is built by TestMain) and
// starts the live server the health-check paths are asked of.
func newComposeCheck(t *testing.T) *composeCheck {
	t.Helper()
	demo := filepath.Join(t.TempDir(), "mtls-demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../cmd/mtls-demo").CombinedOutput(); err != nil {
		t.Fatalf("build mtls-demo: %v\n%s", err, out)
	}
	ref, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	return &composeCheck{
		programs: map[string]string{"certmint": binary, "mtls-demo": demo},
		envOnly:  envOnlyVariables(ref),
		live:     StartServer(t, ServerOptions{}),
	}
}

// envOnlyVariables reads the "Environment only" table of the generated
// configuration reference: the CERTMINT_* variables that are not flags.
func envOnlyVariables(ref []byte) map[string]bool {
	out := map[string]bool{}
	section := false
	row := regexp.MustCompile("^\\| `([A-Z0-9_]+)` \\|")
	for _, line := range strings.Split(string(ref), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = line == "## Environment only"
		} else if m := row.FindStringSubmatch(line); section && m != nil {
			out[m[1]] = true
		}
	}
	return out
}

// TestCompose checks docker-compose.yml, the Dockerfile, deploy/haproxy.cfg
// and the README's `docker compose exec` lines against this tree.
func TestCompose(t *testing.T) {
	p, err := loadCompose(t, "docker-compose.yml")
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	c := newComposeCheck(t)
	if len(c.envOnly) == 0 {
		t.Fatal("docs/configuration.md lists no environment-only variables")
	}
	for _, problem := range c.project(t, p) {
		t.Error(problem)
	}
	for _, problem := range c.dockerfile(t) {
		t.Error(problem)
	}
	for _, problem := range c.haproxy(t, p) {
		t.Error(problem)
	}
	for _, problem := range c.readmeExecLines(t, p) {
		t.Error(problem)
	}

	t.Run("new-secrets", func(t *testing.T) { checkNewSecrets(t, p) })

	// The checks must be able to fail. Each case changes the compose file
	// as a mistake or a rename would, and the loader or the checks must
	// say so, naming the thing.
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"renamed-serve-flag", "      - --crl-listen=:8880\n      - --hostname=acme-lb,certmint-2", "      - --crl-listen-addr=:8880\n      - --hostname=acme-lb,certmint-2", "--crl-listen-addr"},
		{"renamed-demo-flag", "      - --interval=5s", "      - --call-interval=5s", "--call-interval"},
		{"renamed-env-flag", "  CERTMINT_DB_PASSWORD_FILE: /run/secrets/pg-password\n  CERTMINT_CA", "  CERTMINT_DB_PASSWORDFILE: /run/secrets/pg-password\n  CERTMINT_CA", "CERTMINT_DB_PASSWORDFILE"},
		{"inline-password", "      POSTGRES_PASSWORD_FILE: /run/secrets/pg-password", "      POSTGRES_PASSWORD: certmint", "POSTGRES_PASSWORD"},
		{"secret-not-given", "    secrets: [pg-password]\n    volumes:\n      - roots:/roots\n", "    volumes:\n      - roots:/roots\n", "/run/secrets/pg-password"},
		{"undeclared-secret", "  ca-passphrase:\n    file: ./deploy/secrets/ca-passphrase\n", "", "undefined secret ca-passphrase"},
		{"undeclared-volume", "  roots:\n  receiver-state:", "  receiver-state:", "undefined volume roots"},
		{"shared-ca-volume", "      - certmint-2-data:/data\n", "      - certmint-2-data:/data\n      - certmint-1-data:/data/ca\n", "certmint-1-data"},
		{"health-path-not-served", "https://127.0.0.1:8443/readyz", "https://127.0.0.1:8443/ready", "/ready"},
		{"console-not-published", "      - \"127.0.0.1:8444:8444\"", "      - \"127.0.0.1:8445:8445\"", "8444"},
	} {
		t.Run("catches/"+tc.name, func(t *testing.T) {
			if !strings.Contains(string(raw), tc.old) {
				t.Fatalf("docker-compose.yml no longer holds %q; update this case", tc.old)
			}
			file := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(file, []byte(strings.Replace(string(raw), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			var report string
			if p, err := loadCompose(t, file); err != nil {
				report = err.Error()
			} else {
				report = strings.Join(c.project(t, p), "\n")
			}
			t.Log(report)
			if !strings.Contains(report, tc.want) {
				t.Errorf("the mistake went unreported (want %q in the report):\n%s", tc.want, report)
			}
		})
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

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkNewSecrets runs deploy/new-secrets.sh in a scratch copy of deploy/:
// it must write every file secret of the project, one random line each,
// readable by the containers' non-root user inside a directory only its
// owner enters, and keep them on a second run (Postgres and the encrypted
// CA keys keep the first ones).
func checkNewSecrets(t *testing.T, p *types.Project) {
	repo, _ := filepath.Abs("..")
	scratch := t.TempDir()
	script := filepath.Join(scratch, "deploy", "new-secrets.sh")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-p", filepath.Join(repo, "deploy", "new-secrets.sh"), script).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	read := func() map[string]string {
		got := map[string]string{}
		for name, sec := range p.Secrets {
			rel, err := filepath.Rel(repo, sec.File)
			if err != nil || sec.File == "" {
				t.Fatalf("secret %s: %q is not a file of the repository", name, sec.File)
			}
			path := filepath.Join(scratch, rel)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("deploy/new-secrets.sh does not write %s: %v", rel, err)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm()&0o004 == 0 {
				t.Errorf("%s is %v: the containers' non-root user cannot read a bind-mounted secret", rel, fi.Mode().Perm())
			}
			if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
				t.Errorf("%s is %v, want 0700", filepath.Dir(rel), fi.Mode().Perm())
			}
			if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
				t.Errorf("%s holds %d bytes, want one line of 64 hex digits", rel, len(b))
			}
			got[name] = string(b)
		}
		return got
	}
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		t.Fatalf("deploy/new-secrets.sh: %v\n%s", err, out)
	}
	first := read()
	if first["pg-password"] == first["ca-passphrase"] {
		t.Error("the two secrets are equal")
	}
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		t.Fatalf("deploy/new-secrets.sh: %v\n%s", err, out)
	}
	for name, v := range read() {
		if v != first[name] {
			t.Errorf("a second run replaced %s", name)
		}
	}
}
