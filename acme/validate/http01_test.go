package validate

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const thumb = "Zm9vYmFyLXRodW1icHJpbnQ"

func keyAuth(token string) string { return token + "." + thumb }

// challengeServer is an applicant's web server: it answers the well-known
// paths the way real (and misconfigured) applicants do.
type challengeServer struct {
	port     string
	tlsPort  string       // an https server with a self-signed certificate
	written  atomic.Int64 // bytes of the "huge" body actually sent
	mu       sync.Mutex
	lastHost string
}

func (s *challengeServer) handler() http.Handler {
	mux := http.NewServeMux()
	p := "/.well-known/acme-challenge/"
	mux.HandleFunc(p+"good", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.lastHost = r.Host
		s.mu.Unlock()
		// Trailing whitespace must be ignored (RFC 8555 §8.3).
		w.Write([]byte(keyAuth("good") + "\r\n"))
	})
	mux.HandleFunc(p+"wrong", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not-the-key-authorization"))
	})
	mux.HandleFunc(p+"redir", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://other.test:"+s.port+"/elsewhere?tok=redir", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(keyAuth(r.URL.Query().Get("tok"))))
	})
	mux.HandleFunc(p+"tohttps", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://other.test:"+s.tlsPort+"/elsewhere?tok=tohttps", http.StatusFound)
	})
	mux.HandleFunc(p+"ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://other.test/"+p+"good", http.StatusFound)
	})
	mux.HandleFunc(p+"badport", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://other.test:22"+p+"good", http.StatusFound)
	})
	mux.HandleFunc(p+"meta", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254:"+s.port+"/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc(p+"loop", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		http.Redirect(w, r, p+"loop?n="+strconv.Itoa(n+1), http.StatusFound)
	})
	mux.HandleFunc(p+"huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for i := 0; i < (1<<30)/len(chunk); i++ { // up to 1 GiB, stops when the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
			s.written.Add(int64(len(chunk)))
		}
	})
	mux.HandleFunc(p+"slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	return mux
}

func newChallengeServer(t *testing.T, network, addr string) *challengeServer {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	cs := &challengeServer{}
	_, cs.port, _ = net.SplitHostPort(l.Addr().String())
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: cs.handler()}}
	srv.Start()
	t.Cleanup(srv.Close)
	// RFC 8555 §8.3: the validator follows redirects to https without
	// checking the certificate; httptest's is signed by no trusted root.
	tlsSrv := httptest.NewTLSServer(cs.handler())
	t.Cleanup(tlsSrv.Close)
	_, cs.tlsPort, _ = net.SplitHostPort(tlsSrv.Listener.Addr().String())
	return cs
}

func TestHTTP01(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	dnsSrv := newTestDNS(t, true,
		"svc.test. A 127.0.0.1",
		"other.test. A 127.0.0.1",
		"meta.test. A 169.254.169.254",
		"txtonly.test. TXT \"hello\"",
	)
	port, _ := strconv.Atoi(cs.port)
	tlsPort, _ := strconv.Atoi(cs.tlsPort)
	v := New(Config{HTTPPort: port, TLSALPNPort: tlsPort, Resolver: dnsSrv.Addr, MaxRedirects: 3})

	tests := []struct {
		name  string
		ident string
		value string
		token string
		kind  Kind // "" = success
		subs  []string
	}{
		{name: "ok/http-01", ident: IdentDNS, value: "svc.test", token: "good"},
		{name: "ok/http-01-ipv4", ident: IdentIP, value: "127.0.0.1", token: "good"},
		{name: "ok/http-01-redirect", ident: IdentDNS, value: "svc.test", token: "redir"},
		{name: "ok/http-01-redirect-to-https", ident: IdentDNS, value: "svc.test", token: "tohttps"},
		{name: "fail/http-01-wrong-body", ident: IdentDNS, value: "svc.test", token: "wrong",
			kind: KindIncorrectResponse, subs: []string{keyAuth("wrong"), `"not-the-key-authorization"`}},
		{name: "fail/http-01-404", ident: IdentDNS, value: "svc.test", token: "missing",
			kind: KindUnauthorized, subs: []string{"returned 404", "/.well-known/acme-challenge/missing", "127.0.0.1:" + cs.port}},
		{name: "fail/http-01-nxdomain", ident: IdentDNS, value: "nope.test", token: "good",
			kind: KindDNS, subs: []string{"NXDOMAIN", "nope.test"}},
		{name: "fail/http-01-no-address", ident: IdentDNS, value: "txtonly.test", token: "good",
			kind: KindDNS, subs: []string{"no A or AAAA records for txtonly.test"}},
		{name: "fail/redirect-to-ftp", ident: IdentDNS, value: "svc.test", token: "ftp",
			kind: KindConnection, subs: []string{"ftp://", "only http and https"}},
		{name: "fail/redirect-to-other-port", ident: IdentDNS, value: "svc.test", token: "badport",
			kind: KindConnection, subs: []string{"port 22 is not allowed"}},
		{name: "fail/too-many-redirects", ident: IdentDNS, value: "svc.test", token: "loop",
			kind: KindConnection, subs: []string{"too many redirects"}},
		{name: "fail/link-local-target", ident: IdentDNS, value: "meta.test", token: "good",
			kind: KindConnection, subs: []string{"address 169.254.169.254 is not an allowed validation target"}},
		{name: "fail/link-local-ip-identifier", ident: IdentIP, value: "169.254.169.254", token: "good",
			kind: KindConnection, subs: []string{"169.254.169.254 is not an allowed validation target"}},
		{name: "fail/redirect-to-link-local", ident: IdentDNS, value: "svc.test", token: "meta",
			kind: KindConnection, subs: []string{"169.254.169.254 is not an allowed validation target"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(context.Background(), Request{
				Type: TypeHTTP01, IdentType: tc.ident, Value: tc.value,
				Token: tc.token, KeyAuth: keyAuth(tc.token),
			})
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantKind(t, err, tc.kind, tc.subs...)
		})
	}
}

// The Host header is the identifier (RFC 8555 §8.3, RFC 8738 §3), which is
// what applicants' servers (lego's among them) match the request against.
func TestHTTP01HostHeader(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	dnsSrv := newTestDNS(t, true, "svc.test. A 127.0.0.1")
	port, _ := strconv.Atoi(cs.port)
	v := New(Config{HTTPPort: port, Resolver: dnsSrv.Addr})
	for _, tc := range []struct{ ident, value, host string }{
		{IdentDNS, "svc.test", "svc.test"},
		{IdentIP, "127.0.0.1", "127.0.0.1"},
	} {
		if err := v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: tc.ident, Value: tc.value, Token: "good", KeyAuth: keyAuth("good")}); err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		cs.mu.Lock()
		got := cs.lastHost
		cs.mu.Unlock()
		if got != tc.host {
			t.Errorf("Host header for %s = %q, want %q", tc.value, got, tc.host)
		}
	}
}

func TestHTTP01IPv6(t *testing.T) {
	v4 := newChallengeServer(t, "tcp", "127.0.0.1:0")
	// The IPv6 server takes the same port so that a name with both an A
	// and an AAAA record can fall back from one to the other.
	v6 := newChallengeServer(t, "tcp6", "[::1]:"+v4.port)
	dnsSrv := newTestDNS(t, true,
		"v6only.test. AAAA ::1",
		"dual.test. A 127.0.0.2", // nothing listens there: refused, then ::1
		"dual.test. AAAA ::1",
	)
	port, _ := strconv.Atoi(v6.port)
	v := New(Config{HTTPPort: port, Resolver: dnsSrv.Addr})
	for _, tc := range []struct{ name, ident, value, host string }{
		{"ok/http-01-ipv6", IdentIP, "::1", "[::1]"},
		{"ok/http-01-aaaa-only", IdentDNS, "v6only.test", "v6only.test"},
		{"ok/http-01-fallback-to-ipv6", IdentDNS, "dual.test", "dual.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: tc.ident, Value: tc.value, Token: "good", KeyAuth: keyAuth("good")})
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			v6.mu.Lock()
			defer v6.mu.Unlock()
			if v6.lastHost != tc.host {
				t.Errorf("Host header = %q, want %q", v6.lastHost, tc.host)
			}
		})
	}
}

func TestHTTP01Refused(t *testing.T) {
	port := freePort(t)
	p, _ := strconv.Atoi(port)
	v := New(Config{HTTPPort: p, Resolver: "127.0.0.1:1"})
	err := v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: IdentIP, Value: "127.0.0.1", Token: "good", KeyAuth: keyAuth("good")})
	wantKind(t, err, KindConnection, "127.0.0.1:"+port, "refused")
}

func TestHTTP01Timeout(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	port, _ := strconv.Atoi(cs.port)
	v := New(Config{HTTPPort: port, Timeout: 300 * time.Millisecond})
	start := time.Now()
	err := v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: IdentIP, Value: "127.0.0.1", Token: "slow", KeyAuth: keyAuth("slow")})
	wantKind(t, err, KindConnection, "timeout")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Validate took %v with a 300ms timeout", d)
	}
}

// A body far larger than MaxBody fails, and the validator stops reading
// instead of buffering it: the server manages to send only a little of it.
func TestHTTP01BoundedBody(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	port, _ := strconv.Atoi(cs.port)
	v := New(Config{HTTPPort: port})
	err := v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: IdentIP, Value: "127.0.0.1", Token: "huge", KeyAuth: keyAuth("huge")})
	wantKind(t, err, KindIncorrectResponse, "larger than 8192 bytes")
	// Give the handler a moment to notice the closed connection.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n := cs.written.Load(); n < 64<<20 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("server wrote %d bytes: validator kept reading past its cap", cs.written.Load())
}

// The policy is enforced at dial time, so a Denied entry covering the
// loopback server blocks validation there, and an Allowed entry lets an
// otherwise default-denied address through.
func TestHTTP01Policy(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	port, _ := strconv.Atoi(cs.port)
	req := Request{Type: TypeHTTP01, IdentType: IdentIP, Value: "127.0.0.1", Token: "good", KeyAuth: keyAuth("good")}

	v := New(Config{HTTPPort: port, Denied: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	wantKind(t, v.Validate(context.Background(), req), KindConnection, "127.0.0.1 is not an allowed validation target")

	v = New(Config{HTTPPort: port, Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	wantKind(t, v.Validate(context.Background(), req), KindConnection, "not an allowed validation target")

	v = New(Config{HTTPPort: port, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err := v.Validate(context.Background(), req); err != nil {
		t.Fatalf("allowed target: %v", err)
	}
}

// A caller's cancelled context is not the applicant's failure.
func TestValidateCallerCancel(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	port, _ := strconv.Atoi(cs.port)
	v := New(Config{HTTPPort: port})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := v.Validate(ctx, Request{Type: TypeHTTP01, IdentType: IdentIP, Value: "127.0.0.1", Token: "slow", KeyAuth: keyAuth("slow")})
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	var ve *Error
	if errors.As(err, &ve) {
		t.Fatalf("got *Error %v, want the context's error", err)
	}
}
