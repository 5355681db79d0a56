package pgtest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// Streaming replication for failover tests: a standby made with
// pg_basebackup -R, a primary that waits for it on every commit
// (synchronous_standby_names), and pg_ctl promote. Nothing beyond
// Debian's postgresql package is needed.

// StartStandby makes a streaming standby of c and starts it: a base
// backup taken over c's replication connection with -R (which writes
// standby.signal and primary_conninfo), its own directory and free port,
// and cluster_name set to name, the application name it reports to the
// primary and the one synchronous_standby_names must list.
func (c *Cluster) StartStandby(name string) (*Cluster, error) {
	s := &Cluster{bin: c.bin, asUser: c.asUser}
	var err error
	if s.dir, err = os.MkdirTemp("", "pgtest-standby-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.setupStandby(c, name); err != nil {
		s.removeDir()
		return nil, err
	}
	s.startReaper()
	return s, nil
}

func (s *Cluster) setupStandby(primary *Cluster, name string) error {
	if err := s.chown(); err != nil {
		return err
	}
	// -X stream copies the WAL written during the backup too, -c fast
	// does not wait for a scheduled checkpoint.
	if err := s.run("pg_basebackup", "-D", s.dataDir(), "-h", "127.0.0.1", "-p", fmt.Sprint(primary.port),
		"-U", "postgres", "-X", "stream", "-c", "fast", "-R", "--no-sync"); err != nil {
		return err
	}
	// The copied postgresql.conf names the primary's port and socket
	// directory; later lines win.
	var err error
	for range 3 {
		if s.port, err = freePort(); err != nil {
			return err
		}
		conf := fmt.Sprintf("\nport = %d\nunix_socket_directories = '%s'\ncluster_name = '%s'\nhot_standby = on\n", s.port, s.dir, name)
		if err = s.appendConf(conf); err != nil {
			return err
		}
		if err = s.StartServer(); err == nil {
			return nil
		}
	}
	return err
}

// RequireSync makes c wait for the standby called name on every commit
// (synchronous_standby_names, synchronous_commit = on: the standby has
// the commit's WAL before the client hears of it) and returns once the
// standby streams in sync, or an error after 30 s.
func (c *Cluster) RequireSync(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{
		fmt.Sprintf("ALTER SYSTEM SET synchronous_standby_names = '%s'", name),
		"ALTER SYSTEM SET synchronous_commit = 'on'",
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("pgtest: %s: %w", stmt, err)
		}
	}
	for {
		var state string
		err := conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", name).Scan(&state)
		if err == nil && state == "sync" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: standby %s is not in sync (state %q, %v)%s", name, state, err, c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Promote turns a standby into a primary and waits until it accepts
// writes (pg_ctl promote -w).
func (c *Cluster) Promote() error {
	return c.run("pg_ctl", "-D", c.dataDir(), "-w", "-t", "60", "promote")
}

// Crash stops the server at once (immediate shutdown: no checkpoint,
// every connection cut), the way a primary that loses its host looks to
// clients. The data stays until Stop.
func (c *Cluster) Crash() error {
	return c.run("pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "-t", "60", "stop")
}
