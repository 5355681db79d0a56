// Package pgtest starts throwaway PostgreSQL clusters for tests, from the
// binaries of Debian's postgresql package (/usr/lib/postgresql/*/bin), so
// that the Postgres code paths are tested against a real server without a
// system service or Docker.
//
// Typical use is one shared cluster per test binary and a fresh database
// per test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Start(t) // postgres://postgres@127.0.0.1:PORT/t_N?sslmode=disable
//		...
//	}
//
// Fault tests that stop or restart the server use their own cluster from
// StartCluster, so they do not disturb other tests.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres says the PostgreSQL server binaries are not installed and
// could not be installed.
var ErrNoPostgres = errors.New("pgtest: PostgreSQL binaries not found in /usr/lib/postgresql/*/bin")

// Cluster is a running throwaway PostgreSQL server listening on
// 127.0.0.1, owned by the test process. Its data lives in a temporary
// directory removed by Stop.
type Cluster struct {
	dir    string // temporary directory: data/, sockets, log
	bin    string // directory holding initdb, pg_ctl
	port   int
	asUser string // OS user running the server ("" = the current one)

	mu     sync.Mutex
	dbs    int
	reaper *os.Process
}

// StartCluster creates and starts a new cluster: initdb in a temporary
// directory (as the postgres OS user when running as root, since initdb
// refuses root), then pg_ctl start on a free loopback port with fsync off.
// A watchdog process stops the server and removes the directory if the
// test binary dies without calling Stop.
func StartCluster() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		c.asUser = "postgres"
		if _, err := user.Lookup(c.asUser); err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the %q OS user: %w", c.asUser, err)
		}
	}
	c.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := c.setup(); err != nil {
		c.removeDir()
		return nil, err
	}
	c.startReaper()
	return c, nil
}

func (c *Cluster) setup() error {
	if err := c.chown(); err != nil {
		return err
	}
	if err := c.run("initdb", "-D", c.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	// Try a few ports: another process may take the free port between
	// choosing it and the server binding it.
	var err error
	for range 3 {
		if c.port, err = freePort(); err != nil {
			return err
		}
		conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
			"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"+
			"shared_buffers = 32MB\n", c.port, c.dir)
		if err = c.appendConf(conf); err != nil {
			return err
		}
		if err = c.StartServer(); err == nil {
			return nil
		}
	}
	return err
}

// chown gives the temporary directory to the server's OS user.
func (c *Cluster) chown() error {
	if c.asUser == "" {
		return nil
	}
	if out, err := exec.Command("chown", c.asUser, c.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: chown %s: %v: %s", c.dir, err, out)
	}
	return nil
}

// appendConf appends settings as the server's user; later lines win, so
// a retry with another port overrides the previous one.
func (c *Cluster) appendConf(conf string) error {
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

// Port is the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DSN returns the URL of the cluster's "postgres" database as superuser
// postgres (trust authentication, so any password is accepted).
func (c *Cluster) DSN() string { return c.dbDSN("postgres") }

func (c *Cluster) dbDSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// CreateDatabase creates a new, empty database and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	c.mu.Lock()
	c.dbs++
	name := fmt.Sprintf("t_%d", c.dbs)
	c.mu.Unlock()
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.dbDSN(name), nil
}

// StartServer starts the server of a stopped cluster (pg_ctl start -w).
func (c *Cluster) StartServer() error {
	return c.run("pg_ctl", "-D", c.dataDir(), "-l", c.logFile(), "-w", "-t", "60", "start")
}

// StopServer stops the server (fast shutdown: open connections are cut)
// and keeps the data, for fault tests: queries now fail to connect.
func (c *Cluster) StopServer() error {
	return c.run("pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "60", "stop")
}

// Restart stops and starts the server on the same port; clients see
// their connections broken and must reconnect.
func (c *Cluster) Restart() error {
	if err := c.StopServer(); err != nil {
		return err
	}
	return c.StartServer()
}

// Stop shuts the server down immediately and removes its directory.
func (c *Cluster) Stop() error {
	err := c.run("pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop")
	if err != nil && !strings.Contains(err.Error(), "Is server running?") {
		err = fmt.Errorf("pgtest: stop: %w", err)
	} else {
		err = nil
	}
	if c.reaper != nil {
		_ = c.reaper.Kill()
		_, _ = c.reaper.Wait()
	}
	c.removeDir()
	return err
}

func (c *Cluster) removeDir() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// run runs a PostgreSQL tool from c.bin, as c.asUser when set, inside
// c.dir (the tools fail when the postgres user cannot read the current
// directory). Failures include the tool's output and the server log tail.
func (c *Cluster) run(tool string, args ...string) error {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s %s: %v: %s%s", tool, args[len(args)-1], err,
			strings.TrimSpace(out.String()), c.logTail())
	}
	return nil
}

func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver log:\n" + string(b)
}

// startReaper starts a detached shell that waits for this process to
// exit and then kills the server and removes the directory: a test binary
// killed by a timeout or a panic does not leave a postgres behind.
func (c *Cluster) startReaper() {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null)
[ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
sleep 1
rm -rf "$2"`
	cmd := exec.Command("sh", "-c", script, "pgtest-reaper", strconv.Itoa(os.Getpid()), c.dir)
	cmd.SysProcAttr = reaperAttr()
	if err := cmd.Start(); err == nil {
		c.reaper = cmd.Process
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBin returns the bin directory of the newest installed PostgreSQL.
// When none is installed and the process runs as root, it installs
// Debian's postgresql package first.
func findBin() (string, error) {
	if bin := newestBin(); bin != "" {
		return bin, nil
	}
	if os.Geteuid() != 0 {
		return "", ErrNoPostgres
	}
	installOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				installErr = fmt.Errorf("%w (apt-get %s failed: %v: %s)", ErrNoPostgres, args[0], err, lastLines(out, 5))
				return
			}
		}
	})
	if installErr != nil {
		return "", installErr
	}
	if bin := newestBin(); bin != "" {
		return bin, nil
	}
	return "", ErrNoPostgres
}

var (
	installOnce sync.Once
	installErr  error
)

func newestBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return ""
	}
	sort.Slice(ok, func(i, j int) bool { return versionOf(ok[i]) < versionOf(ok[j]) })
	return ok[len(ok)-1]
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
