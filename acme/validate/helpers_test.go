package validate

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is a real DNS server on a free loopback UDP port that answers from
// a map of records. With recursive set it behaves like a recursive resolver
// and includes the CNAME chain and its target's records in one answer;
// without it, it returns only the CNAME, so the validator must chase it.
type testDNS struct {
	Addr      string
	recursive bool

	mu      sync.Mutex
	records map[string][]dns.RR
	rcodes  map[string]int
	asked   int // queries answered
}

func newTestDNS(t *testing.T, recursive bool, rrs ...string) *testDNS {
	t.Helper()
	d := &testDNS{recursive: recursive, records: map[string][]dns.RR{}, rcodes: map[string]int{}}
	for _, s := range rrs {
		d.add(t, s)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	d.Addr = pc.LocalAddr().String()
	return d
}

// add parses one record in zone-file syntax, e.g. "svc.test. A 127.0.0.1".
func (d *testDNS) add(t *testing.T, s string) {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("bad test record %q: %v", s, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	d.records[name] = append(d.records[name], rr)
}

// fail makes every query for name answer with rcode.
func (d *testDNS) fail(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcodes[dns.Fqdn(name)] = rcode
}

// queries is how many queries the server has answered.
func (d *testDNS) queries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked++
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = d.recursive
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if rc, ok := d.rcodes[name]; ok {
		m.Rcode = rc
		_ = w.WriteMsg(m)
		return
	}
	for hop := 0; hop < 16; hop++ {
		rrs := d.records[name]
		if len(rrs) == 0 {
			if hop == 0 {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		var cname *dns.CNAME
		matched := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
				matched = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if matched || cname == nil {
			break
		}
		m.Answer = append(m.Answer, cname)
		if !d.recursive {
			break
		}
		name = strings.ToLower(cname.Target)
	}
	_ = w.WriteMsg(m)
}

// freePort returns a loopback TCP port that nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// wantKind fails the test unless err is an *Error of kind k whose detail
// contains every one of subs.
func wantKind(t *testing.T, err error, k Kind, subs ...string) {
	t.Helper()
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("got %v (%T), want *Error of kind %s", err, err, k)
	}
	t.Logf("%s: %s", ve.Kind, ve.Detail)
	if ve.Kind != k {
		t.Fatalf("kind = %s, want %s; detail: %s", ve.Kind, k, ve.Detail)
	}
	for _, s := range subs {
		if !strings.Contains(ve.Detail, s) {
			t.Errorf("detail %q does not mention %q", ve.Detail, s)
		}
	}
}
