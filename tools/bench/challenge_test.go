package bench

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestResponderServesKeyAuth(t *testing.T) {
	r := &responder{}
	p := r.add("tok123", "tok123.thumb")
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://x.bench.test"+path, nil))
		return rec.Code, rec.Body.String()
	}
	select {
	case <-p.fetched:
		t.Fatal("fetched before any request")
	default:
	}
	if code, body := get(challengePrefix + "tok123"); code != 200 || body != "tok123.thumb" {
		t.Errorf("got %d %q", code, body)
	}
	select {
	case <-p.fetched:
	default:
		t.Error("fetch not signalled")
	}
	get(challengePrefix + "tok123") // a second fetch must not panic on close
	if code, _ := get(challengePrefix + "other"); code != 404 {
		t.Errorf("unknown token: %d", code)
	}
	r.remove("tok123")
	if code, _ := get(challengePrefix + "tok123"); code != 404 {
		t.Errorf("removed token: %d", code)
	}
}

func TestDNSAnswersLoopback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
		v6     bool
	}{{"v4-only", "127.0.0.1:5002", false}, {"any", ":5002", true}, {"v6", "[::1]:5002", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listensOnV6(tc.listen); got != tc.v6 {
				t.Fatalf("listensOnV6(%q) = %v", tc.listen, got)
			}
		})
	}

	stop, addr := startDNS(t, dnsAnswerer{v6: false})
	defer stop()
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg).SetQuestion("abc123.bench.test.", dns.TypeA)
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Answer) != 1 || in.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Errorf("A answer %v", in.Answer)
	}
	m = new(dns.Msg).SetQuestion("abc123.bench.test.", dns.TypeAAAA)
	if in, _, err = c.Exchange(m, addr); err != nil || len(in.Answer) != 0 || in.Rcode != dns.RcodeSuccess {
		t.Errorf("AAAA without v6 listener: %v %v", err, in)
	}

	stop6, addr6 := startDNS(t, dnsAnswerer{v6: true})
	defer stop6()
	c.Net = "tcp"
	if in, _, err = c.Exchange(m, addr6); err != nil || len(in.Answer) != 1 || in.Answer[0].(*dns.AAAA).AAAA.String() != "::1" {
		t.Errorf("AAAA over TCP: %v %v", err, in)
	}
}

// startDNS runs serveDNS on a free port (UDP and TCP on the same number).
func startDNS(t *testing.T, h dns.Handler) (func(), string) {
	t.Helper()
	for range 10 {
		ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if stop, err := serveDNS(addr, h); err == nil {
			return stop, addr
		}
	}
	t.Fatal("no free port for DNS")
	return nil, ""
}
