package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEHops bounds how many CNAMEs a look-up follows, whether they come
// in one recursive answer or must be chased with further queries.
const maxCNAMEHops = 8

// resolvConf is where the system's DNS servers are read from when
// Config.Resolver is empty.
const resolvConf = "/etc/resolv.conf"

// resolver asks one DNS server (or the system's, in order) directly, rather
// than through the OS, so that the operator's --dns-resolver is honoured for
// every name validation touches and so that NXDOMAIN, SERVFAIL and an empty
// answer can be told apart in what the applicant is shown.
//
// Names under localhost are loopback and nothing else (localhost.go).
// Other addresses (not TXT records) come first from the --validation-hosts
// table when there is one, then, without --dns-resolver, from the system's
// hosts file as the host's own resolver would; only names neither lists go
// to DNS.
type resolver struct {
	server  string // "" = read resolvConf on each look-up
	timeout time.Duration
	hosts   []*hostsFile // consulted in order before DNS for A/AAAA
}

// newResolver asks server ("" for the system's), after the validationHosts
// table and, without a server, the systemHosts file (/etc/hosts outside
// tests).
func newResolver(server string, timeout time.Duration, validationHosts, systemHosts string) *resolver {
	r := &resolver{server: server, timeout: timeout}
	if validationHosts != "" {
		r.hosts = append(r.hosts, newHostsFile(validationHosts, true))
	}
	if server == "" {
		r.hosts = append(r.hosts, newHostsFile(systemHosts, false))
	}
	return r
}

// lookupError is a DNS look-up that did not produce an answer to use. Its
// Error text is shown to the applicant, so it names the query but not the
// validation server's resolver.
type lookupError struct {
	name    string // name asked about, without the trailing dot
	qtype   uint16
	rcode   int // set when the server answered with an error code
	err     error
	problem string // set for failures with their own wording
}

func (e *lookupError) Error() string {
	q := dns.TypeToString[e.qtype]
	switch {
	case e.problem != "":
		return "DNS problem: " + e.problem
	case e.err == nil:
		return fmt.Sprintf("DNS problem: %s looking up %s for %s", dns.RcodeToString[e.rcode], q, e.name)
	case errors.Is(e.err, context.DeadlineExceeded) || isTimeout(e.err):
		return fmt.Sprintf("DNS problem: query timed out looking up %s for %s", q, e.name)
	default:
		return fmt.Sprintf("DNS problem: networking error looking up %s for %s", q, e.name)
	}
}

func (e *lookupError) Unwrap() error { return e.err }

func (r *resolver) servers() ([]string, error) {
	if r.server != "" {
		return []string{r.server}, nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", resolvConf, err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no nameservers in %s", resolvConf)
	}
	return out, nil
}

// exchange sends one recursive query, over UDP and again over TCP if the
// answer was truncated, trying each server until one answers.
func (r *resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	servers, err := r.servers()
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(4096, false)
	var lastErr error
	for _, srv := range servers {
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		c := &dns.Client{Net: "udp", UDPSize: 4096}
		resp, _, err := c.ExchangeContext(qctx, m, srv)
		if err == nil && resp.Truncated {
			c.Net = "tcp"
			resp, _, err = c.ExchangeContext(qctx, m, srv)
		}
		cancel()
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// lookup returns the records of qtype at name, following CNAMEs both within
// one answer and by re-querying the CNAME target when the server did not
// (a forwarding resolver, or an authoritative-only one, may not). An empty
// result with a nil error means the name exists but has no such records.
func (r *resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	display := strings.TrimSuffix(name, ".")
	if isLocalhost(name) { // RFC 6761 §6.3: no query, a negative answer
		return nil, &lookupError{name: display, qtype: qtype,
			problem: fmt.Sprintf("%s is a localhost name (RFC 6761 §6.3): it has no %s records; use http-01 or tls-alpn-01", display, dns.TypeToString[qtype])}
	}
	target := dns.Fqdn(strings.ToLower(name))
	seen := map[string]bool{target: true}
	hops := 0
	for {
		resp, err := r.exchange(ctx, target, qtype)
		if err != nil {
			return nil, &lookupError{name: display, qtype: qtype, err: err}
		}
		if resp.Rcode != dns.RcodeSuccess {
			return nil, &lookupError{name: display, qtype: qtype, rcode: resp.Rcode}
		}
		cur := target
		for {
			var out []dns.RR
			next := ""
			for _, rr := range resp.Answer {
				h := rr.Header()
				if !strings.EqualFold(h.Name, cur) {
					continue
				}
				if h.Rrtype == qtype {
					out = append(out, rr)
				} else if c, ok := rr.(*dns.CNAME); ok {
					next = strings.ToLower(c.Target)
				}
			}
			if len(out) > 0 {
				return out, nil
			}
			if next == "" {
				break
			}
			hops++
			if hops > maxCNAMEHops || seen[next] {
				return nil, &lookupError{name: display, qtype: qtype,
					problem: fmt.Sprintf("too many CNAMEs (or a loop) looking up %s for %s", dns.TypeToString[qtype], display)}
			}
			seen[next] = true
			cur = next
		}
		if cur == target {
			return nil, nil
		}
		target = cur
	}
}

// lookupIP resolves host from the hosts tables, or else its A and AAAA
// records concurrently. It fails with a *lookupError only if neither gave an
// address.
func (r *resolver) lookupIP(ctx context.Context, host string) (v4, v6 []netip.Addr, err error) {
	if isLocalhost(host) {
		return []netip.Addr{loopback4}, []netip.Addr{loopback6}, nil
	}
	for _, h := range r.hosts {
		v4, v6, found, err := h.lookup(host)
		if err != nil {
			return nil, nil, &lookupError{name: strings.TrimSuffix(host, "."), qtype: dns.TypeA, err: err,
				problem: "the validation server's hosts table cannot be read"}
		}
		if found {
			return v4, v6, nil // a listed name is not looked up in DNS, as in glibc
		}
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ask := func(qtype uint16, ch chan<- result) {
		rrs, err := r.lookup(ctx, host, qtype)
		var addrs []netip.Addr
		for _, rr := range rrs {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
		ch <- result{addrs, err}
	}
	ch4, ch6 := make(chan result, 1), make(chan result, 1)
	go ask(dns.TypeA, ch4)
	go ask(dns.TypeAAAA, ch6)
	r4, r6 := <-ch4, <-ch6
	if len(r4.addrs) > 0 || len(r6.addrs) > 0 {
		return r4.addrs, r6.addrs, nil
	}
	if r4.err != nil {
		return nil, nil, r4.err
	}
	if r6.err != nil {
		return nil, nil, r6.err
	}
	return nil, nil, &lookupError{name: strings.TrimSuffix(host, "."), qtype: dns.TypeA,
		problem: fmt.Sprintf("no A or AAAA records for %s", strings.TrimSuffix(host, "."))}
}
