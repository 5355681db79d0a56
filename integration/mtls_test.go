package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/agent"
)

// TestMTLSRenewals runs a receiver and a sender, each with an embedded
// agent on two-minute certificates (valid one more minute after issuance,
// since the CA backdates a minute), until both renewed three times. Every
// call makes a fresh handshake and every call must succeed.
func TestMTLSRenewals(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{Args: []string{"--profile", "short=2m"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	renewals := map[string]int{}
	newAgent := func(name string, mode func(*agent.Config)) *agent.Agent {
		cfg := agentConfig(t, s, name)
		cfg.Profile = "short"
		mode(&cfg)
		cfg.OnRenew = func(c *tls.Certificate) {
			mu.Lock()
			renewals[name]++
			mu.Unlock()
			t.Logf("%s: certificate %s valid until %s", name, c.Leaf.SerialNumber.Text(16)[:8], c.Leaf.NotAfter.Format(time.TimeOnly))
		}
		a, err := agent.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, s.Output())
		}
		return a
	}
	// Different challenge ports, so simultaneous renewals do not collide.
	recv := newAgent("receiver.test", func(c *agent.Config) {
		c.HTTP01Listen, c.TLSALPN01Listen = "", "127.0.0.1:"+strconv.Itoa(s.TLSPort)
	})
	send := newAgent("sender.test", func(*agent.Config) {})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var handshakeErrs []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.TLS.VerifiedChains[0][0].DNSNames[0])
	})}
	go srv.Serve(tls.NewListener(ln, recv.ServerTLSConfig()))
	defer srv.Close()
	url := "https://receiver.test:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/"
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{TLSClientConfig: send.ClientTLSConfig(), DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ln.Addr().String()) // receiver.test is on loopback
		}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}

	// A client without a certificate from this CA is refused.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.Roots, ServerName: "receiver.test"},
		DialContext:     transport.DialContext}}
	if resp, err := anon.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("receiver answered a client without a certificate")
	}

	start := time.Now()
	calls, served := 0, map[string]bool{}
	for {
		resp, err := client.Get(url)
		if err != nil {
			handshakeErrs = append(handshakeErrs, err.Error())
			t.Errorf("call %d failed: %v", calls, err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello sender.test" {
				t.Errorf("call %d: answer %q", calls, body)
			}
			served[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
		}
		calls++
		mu.Lock()
		done := renewals["receiver.test"] >= 4 && renewals["sender.test"] >= 4 // first + 3 renewals
		mu.Unlock()
		if done {
			break
		}
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("not enough renewals in 4m: %v", renewals)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(served) < 4 {
		t.Errorf("the receiver served %d certificates, want the renewed ones too", len(served))
	}
	t.Logf("%d calls over %s, %d failed, renewals %v, receiver served %d certificates",
		calls, time.Since(start).Round(time.Second), len(handshakeErrs), renewals, len(served))
}

// TestMTLSDemoProcesses runs the mtls-demo binaries: the sender calls the
// receiver over mutual TLS and logs the answers.
func TestMTLSDemoProcesses(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	demo := mtlsDemoBinary(t)
	fp := rootFingerprint(t, s)
	common := []string{"--server", s.DirectoryURL(), "--root-fingerprint", fp}
	// Port 0: the receiver says where it listens ("receiver listening addr=...").
	recv := exec.Command(demo, append([]string{"receiver", "--listen", "127.0.0.1:0",
		"--name", "127.0.0.1", "--state", t.TempDir(), "--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort)}, common...)...)
	var rlog lockedBuffer
	recv.Stderr = &rlog
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { recv.Process.Kill(); recv.Wait() }()
	listening := regexp.MustCompile(`msg="receiver listening".* addr=(127\.0\.0\.1:\d+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("receiver did not start:\n%s", rlog.String())
		}
		m = listening.FindStringSubmatch(rlog.String())
	}
	sender := exec.Command(demo, append([]string{"sender", "--receiver", "https://" + m[1] + "/",
		"--name", "sender.test", "--state", t.TempDir(), "--http01-listen", "127.0.0.1:" + strconv.Itoa(s.HTTPPort),
		"--interval", "100ms", "--count", "5"}, common...)...)
	sender.Env = os.Environ()
	out, err := sender.CombinedOutput()
	if err != nil {
		t.Fatalf("sender: %v\n%s\nreceiver:\n%s", err, out, rlog.String())
	}
	if n := len(regexp.MustCompile(`msg="call ok" .*answer="hello sender\.test \(serial [0-9a-f]+\), this is 127\.0\.0\.1"`).FindAll(out, -1)); n != 5 {
		t.Fatalf("sender logged %d answers:\n%s", n, out)
	}
}
