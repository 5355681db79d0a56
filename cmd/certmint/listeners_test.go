package main

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/certmint/certmint/tools/freeport"
)

func listenOpts(listen, admin, crl, metrics string) serveOptions {
	return serveOptions{Listen: listen, AdminListen: admin, CRLListen: crl, MetricsListen: metrics}
}

// TestCheckListenAddrs: what can be judged without a socket is refused as
// a usage error naming the flag.
func TestCheckListenAddrs(t *testing.T) {
	for name, tc := range map[string]struct {
		o    serveOptions
		want string // "" = ok
	}{
		"ok/defaults":          {listenOpts(":8443", "127.0.0.1:8444", ":8880", ""), ""},
		"ok/all-port-0":        {listenOpts("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"), ""},
		"ok/same-port-2-hosts": {listenOpts("127.0.0.1:8443", "127.0.0.2:8443", "", ""), ""},
		"fail/port-range":      {listenOpts("127.0.0.1:99999", "127.0.0.1:8444", "", ""), "--listen 127.0.0.1:99999: port 99999 is out of range"},
		"fail/not-host-port":   {listenOpts("8443", "127.0.0.1:8444", "", ""), `--listen "8443" is not host:port`},
		"fail/admin-is-listen": {listenOpts("127.0.0.1:8443", "127.0.0.1:8443", "", ""), "--listen 127.0.0.1:8443 and --admin-listen 127.0.0.1:8443 are the same address"},
		"fail/wildcard-clash":  {listenOpts(":8443", "127.0.0.1:8443", "", ""), "are the same address"},
		"fail/crl-clash":       {listenOpts(":8443", "127.0.0.1:8444", "0.0.0.0:8444", ""), "--admin-listen 127.0.0.1:8444 and --crl-listen 0.0.0.0:8444"},
		"fail/empty-admin":     {listenOpts(":8443", "", "", ""), "--admin-listen is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkListenAddrs(tc.o)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

// TestBindListeners: all addresses bound or none; a taken port is a
// usage error that says whether another flag or another process has it.
func TestBindListeners(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	ln, err := bindListeners(listenOpts("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""))
	if err != nil {
		t.Fatal(err)
	}
	if ln.ACME == nil || ln.Admin == nil || ln.CRL == nil || ln.Metrics != nil {
		t.Fatalf("bound %+v", ln)
	}
	ln.close()

	// The CRL port is taken: the error names it, and the ACME and console
	// listeners bound before it are closed again.
	_, err = bindListeners(listenOpts("127.0.0.1:0", "127.0.0.1:0", busy.Addr().String(), ""))
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--crl-listen "+busy.Addr().String()+": the address is already in use") {
		t.Fatalf("got %v", err)
	}

	// Two spellings of one address: only the kernel sees the clash, and
	// the message blames the other flag, not a stranger.
	p, err := freeport.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	port := strconv.Itoa(p.N)
	_, err = bindListeners(listenOpts("localhost:"+port, "127.0.0.1:"+port, "", ""))
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--admin-listen 127.0.0.1:"+port+" clashes with --listen localhost:"+port) {
		t.Fatalf("got %v", err)
	}
	// ... and nothing stays bound: the same addresses work one at a time.
	ln, err = bindListeners(listenOpts("127.0.0.1:"+port, "127.0.0.1:0", "", ""))
	if err != nil {
		t.Fatalf("the refused start left a listener behind: %v", err)
	}
	ln.close()
}

// TestClientHost: printed URLs name a host the server's certificate
// covers and curl can reach, never a wildcard address.
func TestClientHost(t *testing.T) {
	names := []string{"localhost", "127.0.0.1", "ca.test"}
	for addr, want := range map[string]string{
		"0.0.0.0:0":   "localhost",
		"[::]:0":      "localhost",
		"127.0.0.1:0": "127.0.0.1",
		"[::1]:0":     "localhost", // ::1 is not in the certificate
	} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("skip %s: %v", addr, err)
			continue
		}
		if got := clientHost(ln, names); got != want {
			t.Errorf("clientHost(%s) = %s, want %s", addr, got, want)
		}
		if got := clientURL("https", ln, names); !strings.HasPrefix(got, "https://"+want+":") || strings.HasSuffix(got, ":0") {
			t.Errorf("clientURL(%s) = %s", addr, got)
		}
		ln.Close()
	}
}
