package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestServerIdentityIssueAndReload(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	dir := t.TempDir()
	s, err := c.ServerIdentity(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatalf("ServerIdentity: %v", err)
	}
	leaf := s.Leaf()
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("names = %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want serverAuth only", leaf.ExtKeyUsage)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 30*24*time.Hour {
		t.Errorf("lifetime = %v, want 30 days", got)
	}
	assertMode(t, filepath.Join(dir, ServerKeyFile), 0o600)
	chain, _ := os.ReadFile(filepath.Join(dir, ServerCertFile))
	if blocks := pemBlocks(chain); len(blocks) != 2 || !slices.Equal(blocks[1], c.Intermediate().Raw) {
		t.Errorf("%s is not leaf+intermediate", ServerCertFile)
	}

	tests := []struct {
		name      string
		hostnames []string
		advance   time.Duration
		tamper    func(t *testing.T)
		wantSame  bool
	}{
		{name: "ok/reload-same-names", hostnames: []string{"127.0.0.1", "LOCALHOST."}, wantSame: true},
		{name: "ok/reload-before-two-thirds", hostnames: []string{"localhost", "127.0.0.1"}, advance: 19 * 24 * time.Hour, wantSame: true},
		{name: "reissue/names-changed", hostnames: []string{"localhost", "127.0.0.1", "::1"}},
		{name: "reissue/past-two-thirds", hostnames: []string{"localhost", "127.0.0.1"}, advance: 21 * 24 * time.Hour},
		{
			name: "reissue/insecure-key-mode", hostnames: []string{"localhost", "127.0.0.1"},
			tamper: func(t *testing.T) { chmod(t, filepath.Join(dir, ServerKeyFile), 0o644) },
		},
		{
			name: "reissue/corrupt-key", hostnames: []string{"localhost", "127.0.0.1"},
			tamper: func(t *testing.T) {
				if err := os.WriteFile(filepath.Join(dir, ServerKeyFile), []byte("junk"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start every case from the original certificate.
			s, err := c.ServerIdentity(dir, []string{"localhost", "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			before := s.Leaf()
			if tt.tamper != nil {
				tt.tamper(t)
			}
			clock.Set(before.NotBefore.Add(time.Minute + tt.advance))
			defer clock.Set(before.NotBefore.Add(time.Minute))
			s2, err := c.ServerIdentity(dir, tt.hostnames)
			if err != nil {
				t.Fatalf("ServerIdentity: %v", err)
			}
			same := s2.Leaf().SerialNumber.Cmp(before.SerialNumber) == 0
			if same != tt.wantSame {
				t.Errorf("same certificate = %v, want %v", same, tt.wantSame)
			}
			assertMode(t, filepath.Join(dir, ServerKeyFile), 0o600)
		})
	}
}

func TestServerIdentityRenew(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	s, err := c.ServerIdentity(t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Leaf()
	life := first.NotAfter.Sub(first.NotBefore)
	tests := []struct {
		name      string
		at        time.Time
		wantRenew bool
	}{
		{"ok/fresh", first.NotBefore.Add(time.Hour), false},
		{"ok/just-before-two-thirds", first.NotAfter.Add(-life/3 - time.Second), false},
		{"renew/at-two-thirds", first.NotAfter.Add(-life / 3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			renewed, err := s.RenewIfNeeded(tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if renewed != tt.wantRenew {
				t.Fatalf("renewed = %v, want %v", renewed, tt.wantRenew)
			}
			got, _ := s.GetCertificate(nil)
			changed := got.Leaf.SerialNumber.Cmp(first.SerialNumber) != 0
			if changed != tt.wantRenew {
				t.Errorf("GetCertificate changed = %v, want %v", changed, tt.wantRenew)
			}
		})
	}
}

// TestServerIdentityRunServesRenewed drives Run with a fake clock while a
// real TLS listener serves GetCertificate, and checks a client trusting only
// the root sees the renewed certificate without a restart.
func TestServerIdentityRunServesRenewed(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	s, err := c.ServerIdentity(t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s.checkEvery = 5 * time.Millisecond
	first := s.Leaf()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: s.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	servedSerial := func(serverName string) string {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
			RootCAs: roots, ServerName: serverName,
			Time: clock.Now, // validity is judged on the fake clock
		})
		if err != nil {
			t.Fatalf("dial %s: %v", serverName, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := servedSerial("localhost"); got != first.SerialNumber.String() {
		t.Fatalf("served %s, want first certificate", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	clock.Set(first.NotBefore.Add(first.NotAfter.Sub(first.NotBefore) * 2 / 3).Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for s.Leaf().SerialNumber.Cmp(first.SerialNumber) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not renew the certificate")
		}
		time.Sleep(5 * time.Millisecond)
	}
	renewed := s.Leaf().SerialNumber.String()
	if got := servedSerial("127.0.0.1"); got != renewed {
		t.Errorf("served %s after renewal, want %s", got, renewed)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestServerIdentityRejects(t *testing.T) {
	c := newTestCA(t, newFakeClock())
	tests := []struct {
		name      string
		hostnames []string
	}{
		{"fail/none", nil},
		{"fail/only-blanks", []string{"", " "}},
		{"fail/url", []string{"https://example.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.ServerIdentity(t.TempDir(), tt.hostnames); err == nil {
				t.Fatal("ServerIdentity succeeded, want error")
			}
		})
	}
}
