package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
)

// Shared returns the test binary's shared cluster, starting it on first
// use. Main stops it; without Main, the cluster's watchdog removes it
// when the test binary exits.
func Shared() (*Cluster, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = StartCluster()
	}
	return shared, sharedErr
}

// Main runs the tests and then stops the shared cluster, if one was
// started. Use it as TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		shared = nil
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Start returns the DSN of a new, empty database on the shared cluster.
// When PostgreSQL is not installed and cannot be installed, the test is
// skipped, or fails when the environment variable CI is "true".
func Start(t testing.TB) string {
	t.Helper()
	c, err := Shared()
	if err != nil {
		Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := c.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Unavailable ends a test that needs PostgreSQL when err says it cannot
// be had: a skip with the reason, but a failure under CI=true, where a
// missing component must not pass silently. Other errors fail the test.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") != "true" {
		t.Skipf("skipping: PostgreSQL is not available (%v); install Debian's postgresql package to run this test", err)
	}
	t.Fatalf("PostgreSQL test cluster: %v", err)
}
