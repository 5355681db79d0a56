package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	mtlsDemoOnce sync.Once
	mtlsDemoPath string
	mtlsDemoErr  error
)

// mtlsDemoBinary builds cmd/mtls-demo once, beside the certmint binary.
func mtlsDemoBinary(t testing.TB) string {
	t.Helper()
	mtlsDemoOnce.Do(func() {
		mtlsDemoPath = filepath.Join(filepath.Dir(binary), "mtls-demo")
		if o, err := exec.Command("go", "build", "-o", mtlsDemoPath, "../cmd/mtls-demo").CombinedOutput(); err != nil {
			mtlsDemoErr = err
			mtlsDemoPath = string(o)
		}
	})
	if mtlsDemoErr != nil {
		t.Fatalf("build mtls-demo: %v\n%s", mtlsDemoErr, mtlsDemoPath)
	}
	return mtlsDemoPath
}

// identityFleet starts a server with a trust domain and has
// `certmint agent` obtain, each with an EAB key of its own, the
// certificates of a receiver (payments/receiver) and of three callers:
// "sender" (payments/sender, the one receivers allow), "batch"
// (reports/batch, valid but another identity) and "plain" (no identity).
// It returns the agents' --out directories.
func identityFleet(t *testing.T) (s *Server, recv string, callers map[string]string) {
	t.Helper()
	s = startIdentityServer(t)
	recv = workloadAgent(t, s, "receiver.test", "payments/receiver")
	callers = map[string]string{
		"sender": workloadAgent(t, s, "sender.test", "payments/sender"),
		"batch":  workloadAgent(t, s, "batch.test", "reports/batch"),
		"plain":  workloadAgent(t, s, "plain.test", ""),
	}
	return s, recv, callers
}

// TestReceiverAuthorizesCaller drives the real mtls-demo receiver with
// --allow spiffe://corp.example/payments/sender on certificates that
// `certmint agent` obtained from a real server: the sender's calls
// succeed; a caller with a valid certificate of the same CA and another
// identity is refused, and so is one whose certificate has no identity,
// each refusal logged with who it was. Three calls each, on loopback, with
// every process bounded by a deadline.
func TestReceiverAuthorizesCaller(t *testing.T) {
	_, recv, callers := identityFleet(t)
	demo := mtlsDemoBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	rcv := exec.CommandContext(ctx, demo, "receiver", "--cert-dir", recv, "--listen", addr, "--allow", senderID)
	var rlog lockedBuffer
	rcv.Stdout, rcv.Stderr = &rlog, &rlog
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rcv.Process.Kill(); _ = rcv.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(rlog.String(), "receiver listening"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("receiver did not start:\n%s", rlog.String())
		}
	}
	call := func(who string) (string, error) {
		cmd := exec.CommandContext(ctx, demo, "sender", "--cert-dir", callers[who], "--receiver", "https://receiver.test:"+addr[strings.LastIndex(addr, ":")+1:]+"/",
			"--connect", addr, "--count", "3", "--interval", "100ms", "--allow", "spiffe://corp.example/payments/receiver")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := call("sender")
	if err != nil {
		t.Fatalf("the allowed sender: %v\n%s\nreceiver:\n%s", err, out, rlog.String())
	}
	if n := len(regexp.MustCompile(`msg="call ok" .*answer="hello spiffe://corp\.example/payments/sender,sender\.test \(serial [0-9a-f]+\)`).FindAllString(out, -1)); n != 3 {
		t.Fatalf("the sender got %d answers naming its identity, want 3:\n%s", n, out)
	}
	for who, refusal := range map[string]string{
		"batch": `msg="caller refused" role=receiver peer_id=spiffe://corp\.example/reports/batch peer_names=batch\.test peer_serial=[0-9a-f]+ reason="identity not allowed`,
		"plain": `msg="caller refused" role=receiver peer_id=\(none\) peer_names=plain\.test peer_serial=[0-9a-f]+ reason="no workload identity`,
	} {
		out, err := call(who)
		if err == nil || strings.Contains(out, "call ok") || !strings.Contains(out, "3 calls failed") {
			t.Errorf("%s: a caller the receiver does not allow got through: %v\n%s", who, err, out)
		}
		// The receiver's log reaches rlog through a pipe: wait for it.
		re, n := regexp.MustCompile(refusal), 0
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if n = len(re.FindAllString(rlog.String(), -1)); n >= 3 || time.Now().After(deadline) {
				break
			}
		}
		if n != 3 {
			t.Errorf("%s: the receiver logged %d refusals naming it, want 3:\n%s", who, n, rlog.String())
		}
	}
}

// TestJavaSeesWorkloadIdentity: a plain-JDK HttpsServer with client auth
// (integration/testdata/java, run with the installed JDK's single-file
// launcher), keyed with the agent's keystore.p12 and trusting its
// truststore.p12, reads the caller's URI SAN through
// X509Certificate.getSubjectAlternativeNames(): 200 for the allowed
// identity, 403 for a valid certificate with another identity or none.
func TestJavaSeesWorkloadIdentity(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		if isCI() {
			t.Fatal("java is not installed")
		}
		t.Skip("java is not installed (apt-get install openjdk-17-jdk-headless)")
	}
	_, recv, callers := identityFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "testdata/java/IdentityReceiver.java", "0",
		filepath.Join(recv, "keystore.p12"), filepath.Join(recv, "truststore.p12"), "changeit", senderID)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var jlog lockedBuffer
	cmd.Stderr = &jlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
			jlog.Write([]byte(sc.Text() + "\n"))
		}
		close(lines)
	}()
	var port string
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "LISTENING ") {
			t.Fatalf("the Java receiver did not start: %q\n%s", l, jlog.String())
		}
		port = strings.TrimPrefix(l, "LISTENING ")
	case <-time.After(90 * time.Second):
		t.Fatalf("the Java receiver did not start in 90s:\n%s", jlog.String())
	}

	get := func(who string) (int, string) {
		dir := callers[who]
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		rootPEM, err := os.ReadFile(filepath.Join(dir, "root.pem"))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(rootPEM)
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
			}}}
		resp, err := client.Get("https://receiver.test:" + port + "/")
		if err != nil {
			t.Fatalf("%s calls the Java receiver: %v\n%s", who, err, jlog.String())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	for who, want := range map[string]struct {
		status int
		body   string
	}{
		"sender": {http.StatusOK, "hello " + senderID},
		"batch":  {http.StatusForbidden, "forbidden: spiffe://corp.example/reports/batch"},
		"plain":  {http.StatusForbidden, "forbidden: no workload identity"},
	} {
		if status, body := get(who); status != want.status || body != want.body {
			t.Errorf("%s: %d %q, want %d %q", who, status, body, want.status, want.body)
		}
	}
}
