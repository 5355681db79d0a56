package integration

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// composeCheck judges a compose project against this tree: the binaries
// built from it, the environment-only variables its configuration
// reference lists, and a live server for the paths health checks ask.
// Each method returns the problems it found, one sentence each.
type composeCheck struct {
	programs map[string]string // program name in the image -> binary here
	envOnly  map[string]bool   // CERTMINT_* variables that are not flags
	live     *Server
}

// ourImage is the image docker-compose.yml builds from this repository.
const ourImage = "certmint:local"

// invocation is one run of one of our programs.
type invocation struct {
	prog string
	args []string
}

// subcommand is the leading words of args before the first flag
// ("serve", "ca root").
func (inv invocation) subcommand() []string {
	i := slices.IndexFunc(inv.args, func(a string) bool { return strings.HasPrefix(a, "-") })
	if i < 0 {
		i = len(inv.args)
	}
	return inv.args[:i]
}

func (inv invocation) String() string { return inv.prog + " " + strings.Join(inv.args, " ") }

// run runs a program of the image with args; it returns the combined
// output and the exit code.
func (c *composeCheck) run(t testing.TB, prog string, args []string) (string, int) {
	t.Helper()
	out, err := exec.Command(c.programs[prog], args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", prog, err)
	}
	return string(out), 0
}

// helpFlag makes a program parse every flag and its value, then stop:
// certmint (cobra) and mtls-demo (package flag) both parse the whole line
// before acting on it, so exit 0 means every flag exists and every value
// parses, and an unknown flag exits 2.
func helpFlag(prog string) string {
	if prog == "mtls-demo" {
		return "-h"
	}
	return "--help"
}

// commandLine checks that the program accepts inv.args, and that the
// same line with an unknown flag is refused (else the check proves
// nothing).
func (c *composeCheck) commandLine(t testing.TB, where string, inv invocation) []string {
	t.Helper()
	if _, ok := c.programs[inv.prog]; !ok {
		return []string{fmt.Sprintf("%s: runs %q, which this repository does not build", where, inv.prog)}
	}
	help := helpFlag(inv.prog)
	if out, code := c.run(t, inv.prog, append(slices.Clone(inv.args), help)); code != 0 {
		// Both programs say what is wrong on their first line.
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return []string{fmt.Sprintf("%s: `%s` is refused (exit %d): %s", where, inv, code, first)}
	}
	sub := inv.subcommand()
	bad := append(append(slices.Clone(sub), "--no-such-flag-xyz"), inv.args[len(sub):]...)
	if _, code := c.run(t, inv.prog, append(bad, help)); code == 0 {
		return []string{fmt.Sprintf("%s: %s accepts an unknown flag with %s; this check proves nothing", where, inv.prog, help)}
	}
	return nil
}

// invocations lists what a service of our image runs: the image's
// entrypoint (certmint), the program its entrypoint names, or the
// certmint and mtls-demo commands of its `sh -c` script.
func invocations(s types.ServiceConfig) ([]invocation, []string) {
	ep, cmd := []string(s.Entrypoint), []string(s.Command)
	switch {
	case len(ep) == 0:
		return []invocation{{"certmint", cmd}}, nil
	case len(ep) == 1 && strings.HasPrefix(ep[0], "/usr/local/bin/"):
		return []invocation{{filepath.Base(ep[0]), cmd}}, nil
	case len(ep) >= 2 && (ep[0] == "/bin/sh" || ep[0] == "sh") && ep[1] == "-c":
		script := strings.Join(append(slices.Clone(ep[2:]), cmd...), " ")
		return scriptInvocations(script), nil
	}
	return nil, []string{fmt.Sprintf("%s: entrypoint %v is neither a program in /usr/local/bin (where the Dockerfile installs them) nor sh -c", s.Name, ep)}
}

// scriptInvocations finds the certmint and mtls-demo commands of a
// simple shell script: words up to a redirection, pipe or separator.
func scriptInvocations(script string) []invocation {
	var out []invocation
	for _, part := range regexp.MustCompile(`&&|\|\||;|\|`).Split(script, -1) {
		words := strings.Fields(part)
		if i := slices.IndexFunc(words, func(w string) bool { return strings.ContainsAny(w[:1], "<>&") }); i >= 0 {
			words = words[:i]
		}
		if len(words) > 0 && (words[0] == "certmint" || words[0] == "mtls-demo") {
			out = append(out, invocation{words[0], words[1:]})
		}
	}
	return out
}

// env is a service's environment with the values interpolated.
func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// flagOf is the value of --name=VALUE or --name VALUE in args.
func flagOf(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// envFlag is the flag CERTMINT_HTTP01_PORT stands for: http01-port.
func envFlag(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "CERTMINT_")), "_", "-")
}

var secretName = regexp.MustCompile(`PASSWORD|PASSPHRASE|SECRET|TOKEN|PIN\b|_PIN`)

// project checks every service of p; see TestCompose.
func (c *composeCheck) project(t testing.TB, p *types.Project) []string {
	t.Helper()
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("..")
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var serves []types.ServiceConfig
	var receivers, senders int
	consolePublished := false

	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if s.Build != nil && s.Build.Context != repo {
			add("%s: builds %s, want the repository root", name, s.Build.Context)
		}
		secrets := map[string]bool{}
		for _, sec := range s.Secrets {
			target := sec.Target
			if target == "" {
				target = sec.Source
			}
			if !strings.HasPrefix(target, "/") {
				target = "/run/secrets/" + target
			}
			secrets[target] = true
		}
		vars := env(s)
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			v := vars[k]
			if secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") {
				add("%s: %s is a secret written into the compose file; give it as a compose secret (%s_FILE=/run/secrets/...)", name, k, k)
			}
			if strings.HasPrefix(v, "/run/secrets/") && !secrets[v] {
				add("%s: %s=%s, but the service is not given that secret (secrets: [...])", name, k, v)
			}
			if u, err := url.Parse(v); err == nil && strings.HasPrefix(u.Scheme, "postgres") {
				if _, has := u.User.Password(); has {
					add("%s: %s holds the database password; use --db-password-file (CERTMINT_DB_PASSWORD_FILE) with a secret", name, k)
				}
			}
		}
		if s.HealthCheck != nil && slices.Contains(s.HealthCheck.Test, "curl") && !strings.Contains(string(dockerfile), "curl") {
			add("%s: the health check uses curl, which the Dockerfile does not install", name)
		}
		for dep, d := range s.DependsOn {
			target := p.Services[dep]
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					add("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart == types.RestartPolicyAlways || target.Restart == types.RestartPolicyUnlessStopped {
					add("%s waits for %s to complete, but %s restarts (restart: %s) and never completes", name, dep, dep, target.Restart)
				}
			}
		}
		if s.Image != ourImage {
			continue
		}
		invs, bad := invocations(s)
		problems = append(problems, bad...)
		if len(invs) == 0 && len(bad) == 0 {
			add("%s: runs none of our programs", name)
		}
		for _, inv := range invs {
			problems = append(problems, c.commandLine(t, name, inv)...)
			if inv.prog == "certmint" {
				problems = append(problems, c.envFlags(t, name, inv, vars)...)
			}
			sub := strings.Join(inv.subcommand(), " ")
			switch {
			case inv.prog == "certmint" && sub == "serve":
				serves = append(serves, s)
				problems = append(problems, c.replica(t, s, inv, vars)...)
				if listen, ok := flagOf(inv.args, "admin-listen"); ok {
					host, port, _ := net.SplitHostPort(listen)
					if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
						for _, pt := range s.Ports {
							consolePublished = consolePublished || fmt.Sprint(pt.Target) == port
						}
					}
				}
			case inv.prog == "mtls-demo" && sub == "receiver":
				receivers++
			case inv.prog == "mtls-demo" && sub == "sender":
				senders++
			}
		}
	}
	if len(serves) < 2 || receivers != 1 || senders != 1 {
		add("want two certmint replicas, one receiver and one sender; got %d, %d, %d", len(serves), receivers, senders)
	}
	if !consolePublished {
		add("no certmint serve service listens for the console on all of its container's addresses (--admin-listen=:8444) and publishes that port (ports: \"127.0.0.1:8444:8444\"): the console is unreachable from the host")
	}
	// docs/scaling.md: a replica needs no copy of DATA/ca; the CA comes
	// from the database. Replicas share no volume.
	mounts := map[string][]string{}
	for _, s := range serves {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				mounts[v.Source] = append(mounts[v.Source], s.Name)
			}
		}
	}
	for _, vol := range slices.Sorted(maps.Keys(mounts)) {
		if len(mounts[vol]) > 1 {
			add("replicas %v share the volume %s; a replica takes the CA from the database and needs no copy of DATA/ca (docs/scaling.md)", mounts[vol], vol)
		}
	}
	if pg, ok := p.Services["postgres"]; !ok || pg.HealthCheck == nil {
		add("postgres: missing, or without a health check")
	}
	problems = append(problems, checkDemoNames(p)...)
	return problems
}

// envFlags checks that every CERTMINT_* variable of the service is a flag
// of the command it runs (exercised through the binary's own parsing,
// with the variable's value) or an environment-only variable.
func (c *composeCheck) envFlags(t testing.TB, service string, inv invocation, vars map[string]string) []string {
	t.Helper()
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !strings.HasPrefix(k, "CERTMINT_") || c.envOnly[k] {
			continue
		}
		args := append(slices.Clone(inv.subcommand()), "--"+envFlag(k)+"="+vars[k], "--help")
		if out, code := c.run(t, "certmint", args); code != 0 {
			problems = append(problems, fmt.Sprintf("%s: %s is neither a flag of `certmint %s` (--%s) nor an environment-only variable of docs/configuration.md: %s",
				service, k, strings.Join(inv.subcommand(), " "), envFlag(k), lastLines([]byte(out), 1)))
		}
	}
	return problems
}

// replica checks a `certmint serve` service as docs/scaling.md describes
// a replica: Postgres without a password in the URL, the password and the
// CA passphrase from secrets, and a health check on a path the server
// serves.
func (c *composeCheck) replica(t testing.TB, s types.ServiceConfig, inv invocation, vars map[string]string) []string {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(s.Name+": "+format, args...))
	}
	setting := func(flag string) string {
		if v, ok := flagOf(inv.args, flag); ok {
			return v
		}
		return vars["CERTMINT_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))]
	}
	if db := setting("db"); !strings.HasPrefix(db, "postgres://") {
		add("replicas need --db postgres://... (or CERTMINT_DB), got %q", db)
	} else if setting("db-password-file") == "" {
		add("the database password must come from a secret: --db-password-file (CERTMINT_DB_PASSWORD_FILE)")
	}
	if vars["CERTMINT_CA_PASSPHRASE_FILE"] == "" {
		add("no CERTMINT_CA_PASSPHRASE_FILE: the CA keys in Postgres would be unencrypted, and every replica needs the passphrase (docs/scaling.md)")
	}
	if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
		add("certmint serve without a health check")
		return problems
	}
	_, listenPort, _ := net.SplitHostPort(setting("listen"))
	if listenPort == "" {
		listenPort = "8443"
	}
	probes := 0
	for _, arg := range s.HealthCheck.Test {
		u, err := url.Parse(arg)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			continue
		}
		probes++
		if u.Port() != listenPort {
			add("the health check asks port %s, but the ACME listener (where /healthz and /readyz are) is on %s", u.Port(), listenPort)
			continue
		}
		if status := c.liveGet(t, u.Path); status != 200 {
			add("the health check asks %s, which a live certmint serve answers with %d", u.Path, status)
		}
	}
	if probes == 0 {
		add("the health check %v asks no URL of the server", s.HealthCheck.Test)
	}
	return problems
}

// liveGet asks the live server's ACME listener for path.
func (c *composeCheck) liveGet(t testing.TB, path string) int {
	t.Helper()
	resp, err := c.live.HTTPClient().Get(fmt.Sprintf("https://127.0.0.1:%d%s", c.live.Port, path))
	if err != nil {
		t.Fatalf("GET %s on the live server: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// checkDemoNames checks that the names the demo connects to resolve in
// the compose network and are in the certificates they will be shown: the
// ACME server's host is a service and in every replica's --hostname, and
// the receiver URL's host is the receiver's network alias and certificate
// name.
func checkDemoNames(p *types.Project) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	aliases := map[string]string{} // name -> service
	for name, s := range p.Services {
		aliases[name] = name
		if n := s.Networks["default"]; n != nil {
			for _, a := range n.Aliases {
				aliases[a] = name
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if len(s.Entrypoint) == 0 || filepath.Base(s.Entrypoint[0]) != "mtls-demo" {
			continue
		}
		args := []string(s.Command)
		serverURL, _ := flagOf(args, "server")
		server, err := url.Parse(serverURL)
		if err != nil || server.Hostname() == "" {
			add("%s: --server %q is not a URL", name, serverURL)
			continue
		}
		if _, ok := aliases[server.Hostname()]; !ok {
			add("%s: --server host %q is not a service or alias", name, server.Hostname())
		}
		for _, rname := range slices.Sorted(maps.Keys(p.Services)) {
			r := p.Services[rname]
			if len(r.Command) > 0 && r.Command[0] == "serve" {
				hosts, _ := flagOf(r.Command, "hostname")
				if !slices.Contains(strings.Split(hosts, ","), server.Hostname()) {
					add("%s: --hostname lacks %q, the name the demo reaches it by through the load balancer", rname, server.Hostname())
				}
			}
		}
		// http-01: certmint connects to port 80 of the certificate name.
		own, _ := flagOf(args, "name")
		if aliases[own] != name {
			add("%s: --name %q does not resolve to this service, so http-01 cannot reach it", name, own)
		}
		if v, _ := flagOf(args, "http01-listen"); v != ":80" {
			add("%s: --http01-listen %q, want :80 (certmint's default --http01-port)", name, v)
		}
		if r, ok := flagOf(args, "receiver"); ok {
			u, err := url.Parse(r)
			recv := ""
			if err == nil {
				recv = aliases[u.Hostname()]
			}
			if n, _ := flagOf(p.Services[recv].Command, "name"); recv == "" || n != u.Hostname() {
				add("%s: --receiver %q is not the receiver's certificate name", name, r)
			}
		}
	}
	return problems
}

// dockerfile checks the image: where it installs the programs, and that
// its default command is a command line certmint accepts, with the
// console on every address of the container and its ports exposed.
func (c *composeCheck) dockerfile(t testing.TB) []string {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, "Dockerfile: "+fmt.Sprintf(format, args...))
	}
	for _, want := range []string{"./cmd/certmint", "./cmd/mtls-demo", "/usr/local/bin/"} {
		if !strings.Contains(text, want) {
			add("no %s (the compose file runs both programs from /usr/local/bin)", want)
		}
	}
	instr := func(name string) []string {
		m := regexp.MustCompile(`(?m)^` + name + `\s+(\[.*\])\s*$`).FindStringSubmatch(text)
		if m == nil {
			return nil
		}
		var list []string
		if err := json.Unmarshal([]byte(m[1]), &list); err != nil {
			add("%s %s is not a JSON list: %v", name, m[1], err)
		}
		return list
	}
	if ep := instr("ENTRYPOINT"); !slices.Equal(ep, []string{"/usr/local/bin/certmint"}) {
		add("ENTRYPOINT %v, want [/usr/local/bin/certmint] (the compose file relies on it)", ep)
	}
	cmd := instr("CMD")
	if len(cmd) == 0 {
		add("no CMD")
		return problems
	}
	problems = append(problems, c.commandLine(t, "Dockerfile CMD", invocation{"certmint", cmd})...)
	var exposed []string
	for _, m := range regexp.MustCompile(`(?m)^EXPOSE\s+(.*)$`).FindAllStringSubmatch(text, -1) {
		exposed = append(exposed, strings.Fields(m[1])...)
	}
	for _, flag := range []string{"listen", "admin-listen"} {
		v, ok := flagOf(cmd, flag)
		if !ok {
			add("CMD %v does not set --%s", cmd, flag)
			continue
		}
		host, port, _ := net.SplitHostPort(v)
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			add("CMD --%s=%s listens only on %s inside the container: unreachable through a published port", flag, v, host)
		}
		if !slices.Contains(exposed, port) {
			add("--%s port %s is not in EXPOSE %v", flag, port, exposed)
		}
	}
	return problems
}

// haproxy checks deploy/haproxy.cfg against the compose project: every
// server is a service, the replicas' health check asks a path a live
// server answers with 200, and `haproxy -c` accepts the file.
func (c *composeCheck) haproxy(t testing.TB, p *types.Project) []string {
	t.Helper()
	raw, err := os.ReadFile("../deploy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, "haproxy.cfg: "+fmt.Sprintf(format, args...))
	}
	server := regexp.MustCompile(`^\s*server\s+\S+\s+([^:\s]+):(\d+)`)
	servers := 0
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		if m := server.FindStringSubmatch(sc.Text()); m != nil {
			servers++
			if _, ok := p.Services[m[1]]; !ok {
				add("server %s:%s is not a compose service", m[1], m[2])
			}
		}
	}
	if servers < 2 {
		add("%d servers, want the two replicas", servers)
	}
	m := regexp.MustCompile(`(?m)^\s*http-check send .*\buri (\S+)`).FindSubmatch(raw)
	if m == nil {
		add("the replicas' health check sends no request")
	} else if status := c.liveGet(t, string(m[1])); status != 200 {
		add("the replicas' health check asks %s, which a live certmint serve answers with %d", m[1], status)
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		if isCI() {
			add("haproxy is not installed (apt-get install haproxy): `haproxy -c` cannot check the file")
		} else {
			t.Log("haproxy is not installed: skipping `haproxy -c` (apt-get install haproxy)")
		}
		return problems
	}
	// The replicas' names do not resolve here; init-addr none lets the
	// check pass with them disabled, as at first start in Docker.
	if out, err := exec.Command("haproxy", "-c", "-f", "../deploy/haproxy.cfg").CombinedOutput(); err != nil {
		add("haproxy -c: %v\n%s", err, out)
	}
	return problems
}

// readmeExecLines checks the README's `docker compose exec` lines: -T (no
// TTY, so stderr stays out of a redirected file), a service of the
// project, a command line its program accepts with the service's
// environment, and, when stdout goes to a file, a command whose stdout
// is that file's content alone (run for real on the live server).
func (c *composeCheck) readmeExecLines(t testing.TB, p *types.Project) []string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	lines := 0
	for _, line := range strings.Split(string(raw), "\n") {
		i := strings.Index(line, "docker compose exec ")
		if i < 0 {
			continue
		}
		lines++
		words := strings.Fields(line[i+len("docker compose exec "):])
		add := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("README `%s`: ", strings.TrimSpace(line[i:]))+fmt.Sprintf(format, args...))
		}
		tty := true
		for len(words) > 0 && strings.HasPrefix(words[0], "-") {
			tty = tty && words[0] != "-T"
			words = words[1:]
		}
		if tty {
			add("without -T: docker allocates a TTY, which mixes stderr into stdout")
		}
		if len(words) < 2 {
			add("names no service and command")
			continue
		}
		s, ok := p.Services[words[0]]
		if !ok {
			add("%s is not a service", words[0])
			continue
		}
		invs := scriptInvocations(strings.Join(words[1:], " "))
		redirect := slices.Contains(words, ">")
		if len(invs) == 0 {
			if words[1] != "cat" {
				add("runs %s, which this check does not know", words[1])
			}
			continue
		}
		inv := invs[0]
		// The service's CERTMINT_* variables reach the command too.
		full := slices.Clone(inv.args)
		for k, v := range env(s) {
			if strings.HasPrefix(k, "CERTMINT_") && !c.envOnly[k] {
				full = append(full, "--"+envFlag(k)+"="+v)
			}
		}
		for _, pr := range c.commandLine(t, "README", invocation{inv.prog, full}) {
			add("%s", pr)
		}
		if redirect && inv.prog == "certmint" {
			cmd := exec.Command(binary, append(slices.Clone(inv.args), "--data", c.live.Data)...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				add("fails on a live server: %v\n%s", err, stderr.String())
				continue
			}
			rest := []byte(stdout.String())
			blocks := 0
			for {
				var b *pem.Block
				b, rest = pem.Decode(rest)
				if b == nil {
					break
				}
				blocks++
			}
			if blocks == 0 || strings.TrimSpace(string(rest)) != "" {
				add("stdout is not PEM alone (%d blocks, then %q)", blocks, lastLines(rest, 1))
			}
		}
	}
	if lines == 0 {
		problems = append(problems, "README.md has no `docker compose exec` line (how to get the root and the admin password)")
	}
	return problems
}
