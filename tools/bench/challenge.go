package bench

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const challengePrefix = "/.well-known/acme-challenge/"

// pending is one http-01 challenge the bench answers. fetched is closed
// when the server first fetches it, so the worker polls right after the
// validation instead of guessing with sleeps.
type pending struct {
	keyAuth []byte
	fetched chan struct{}
	once    sync.Once
}

// responder answers http-01 (RFC 8555 §8.3) for every worker from one
// in-memory map, token -> *pending.
type responder struct {
	tokens sync.Map
}

func (r *responder) add(token, keyAuth string) *pending {
	p := &pending{keyAuth: []byte(keyAuth), fetched: make(chan struct{})}
	r.tokens.Store(token, p)
	return p
}

func (r *responder) remove(token string) { r.tokens.Delete(token) }

func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, challengePrefix)
	if !ok {
		http.NotFound(w, req)
		return
	}
	v, ok := r.tokens.Load(token)
	if !ok {
		http.NotFound(w, req)
		return
	}
	p := v.(*pending)
	w.Header().Set("Content-Type", "text/plain")
	w.Write(p.keyAuth)
	p.once.Do(func() { close(p.fetched) })
}

// serveHTTP01 starts the responder on addr; close the server to stop.
func serveHTTP01(addr string, r *responder) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

// dnsAnswerer answers A with 127.0.0.1 for every name, and AAAA with ::1
// only when the http-01 responder also listens on IPv6 loopback, so a
// validator preferring IPv6 never lands where nobody answers.
type dnsAnswerer struct{ v6 bool }

func (d dnsAnswerer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeAAAA:
			if d.v6 {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback})
			}
		}
	}
	w.WriteMsg(m)
}

// listensOnV6 reports whether a listener on addr accepts connections to ::1.
func listensOnV6(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is6() && (a.IsUnspecified() || a.IsLoopback())
}

// serveDNS starts UDP and TCP DNS servers on addr; the returned function
// stops both.
func serveDNS(addr string, h dns.Handler) (func(), error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	return func() { udp.Shutdown(); tcp.Shutdown() }, nil
}
