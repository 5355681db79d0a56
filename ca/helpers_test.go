package ca

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Argon2id with the production parameters costs about a second per key
	// under -race; the format and code path are the same with cheap ones.
	defaultKDF = kdfParams{Time: 1, MemoryKiB: 64, Threads: 1}
	os.Exit(m.Run())
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestCA opens a fresh CA in a temp dir with the given clock.
func newTestCA(t *testing.T, clock *fakeClock) *CA {
	t.Helper()
	c, err := Open(Options{Dir: t.TempDir() + "/ca", Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

// pemBlocks returns the DER of every PEM block in data.
func pemBlocks(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, b.Bytes)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}
