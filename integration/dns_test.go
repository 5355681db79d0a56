package integration

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer answers the validation look-ups of a test: A 127.0.0.1 and
// AAAA ::1 for every name, NXDOMAIN for names under "nxdomain.test.", and
// TXT records the test sets (dns-01).
type DNSServer struct {
	Addr string
	mu   sync.Mutex
	txt  map[string][]string // fqdn -> values
	srv  *dns.Server
}

// StartDNS starts the server on a free UDP port of 127.0.0.1.
func StartDNS(t testing.TB) *DNSServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &DNSServer{Addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	go d.srv.ActivateAndServe()
	t.Cleanup(func() { d.srv.Shutdown() })
	return d
}

// SetTXT adds a TXT value for name (a domain name, with or without the
// final dot).
func (d *DNSServer) SetTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fqdn := dns.Fqdn(strings.ToLower(name))
	d.txt[fqdn] = append(d.txt[fqdn], value)
}

// ClearTXT removes the TXT values of name.
func (d *DNSServer) ClearTXT(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.txt, dns.Fqdn(strings.ToLower(name)))
}

func (d *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		if strings.HasSuffix(name, "nxdomain.test.") {
			m.Rcode = dns.RcodeNameError
			continue
		}
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			if !strings.HasPrefix(name, "_") {
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP("127.0.0.1")})
			}
		case dns.TypeAAAA:
			if !strings.HasPrefix(name, "_") {
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("::1")})
			}
		case dns.TypeTXT:
			d.mu.Lock()
			vals := append([]string(nil), d.txt[name]...)
			d.mu.Unlock()
			hdr.Rrtype = dns.TypeTXT
			for _, v := range vals {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
			}
		case dns.TypeSOA:
			hdr.Rrtype = dns.TypeSOA
			m.Answer = append(m.Answer, &dns.SOA{Hdr: hdr, Ns: "ns.test.", Mbox: "hostmaster.test.",
				Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 0})
		}
	}
	_ = w.WriteMsg(m)
}
