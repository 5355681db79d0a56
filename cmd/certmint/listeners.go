package main

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/certmint/certmint/ca/crl"
)

// listeners are the sockets of `certmint serve`. They are bound before the
// data directory, the CA, the database or the first console user is
// created, so a bad, clashing or taken address is one usage error (exit 2)
// that leaves nothing behind, and the servers are handed these very
// sockets: nothing binds twice. Port 0 is allowed everywhere; the real
// addresses are in the startup line and the --ready-file.
type listeners struct {
	ACME, Admin net.Listener
	CRL         net.Listener // nil without --crl-listen
	Metrics     net.Listener // nil without --metrics-listen
}

// listenFlag is one address flag and where its socket goes.
type listenFlag struct {
	flag, addr string
	dst        *net.Listener
}

func (l *listeners) flags(o serveOptions) []listenFlag {
	return []listenFlag{
		{"--listen", o.Listen, &l.ACME},
		{"--admin-listen", o.AdminListen, &l.Admin},
		{"--crl-listen", o.CRLListen, &l.CRL},
		{"--metrics-listen", o.MetricsListen, &l.Metrics},
	}
}

// checkListenAddrs is the part of the listener check that needs no socket:
// each address is host:port with a port in range, and no two flags name
// the same port on overlapping hosts. Binding finds the rest.
func checkListenAddrs(o serveOptions) error {
	var seen []listenFlag
	for _, f := range (&listeners{}).flags(o) {
		if f.addr == "" {
			if f.flag == "--listen" || f.flag == "--admin-listen" {
				return usagef("%s is empty; give host:port, e.g. 127.0.0.1:8444 (port 0 picks a free port)", f.flag)
			}
			continue
		}
		host, port, err := net.SplitHostPort(f.addr)
		if err != nil {
			return usagef("%s %q is not host:port (e.g. :8443 or 127.0.0.1:8444)", f.flag, f.addr)
		}
		if n, err := strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
			return usagef("%s %s: port %d is out of range (1-65535, or 0 for a free port)", f.flag, f.addr, n)
		}
		for _, s := range seen {
			shost, sport, _ := net.SplitHostPort(s.addr)
			if port != "0" && port == sport && (host == shost || wildcardHost(host) || wildcardHost(shost)) {
				return usagef("%s %s and %s %s are the same address; give each listener its own port", s.flag, s.addr, f.flag, f.addr)
			}
		}
		seen = append(seen, f)
	}
	return nil
}

func wildcardHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// bindListeners binds every configured address, or none: on the first
// failure it closes what it bound and says which flag to change.
func bindListeners(o serveOptions) (*listeners, error) {
	if err := checkListenAddrs(o); err != nil {
		return nil, err
	}
	l := &listeners{}
	var bound []listenFlag
	for _, f := range l.flags(o) {
		if f.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			l.close()
			return nil, listenError(f, err, bound)
		}
		*f.dst = ln
		bound = append(bound, f)
	}
	return l, nil
}

// listenError says in one line why an address could not be bound and what
// to do about it.
func listenError(f listenFlag, err error, bound []listenFlag) error {
	_, port, _ := net.SplitHostPort(f.addr)
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		for _, b := range bound {
			if _, p, _ := net.SplitHostPort((*b.dst).Addr().String()); p == port {
				return usagef("%s %s clashes with %s %s; give each listener its own port", f.flag, f.addr, b.flag, b.addr)
			}
		}
		return usagef("%s %s: the address is already in use (is another certmint or server running there?); stop it or choose another port", f.flag, f.addr)
	case errors.Is(err, syscall.EACCES):
		return usagef("%s %s: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE, or choose a port above 1023", f.flag, f.addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return usagef("%s %s: this machine has no such address; use one of its own addresses, or :%s for all", f.flag, f.addr, port)
	case errors.As(err, &dnsErr):
		return usagef("%s %s: cannot resolve %q; use an IP address or a name this machine resolves", f.flag, f.addr, dnsErr.Name)
	}
	return usagef("%s %s: %v", f.flag, f.addr, errors.Unwrap(err))
}

func (l *listeners) close() {
	for _, ln := range []net.Listener{l.ACME, l.Admin, l.CRL, l.Metrics} {
		if ln != nil {
			ln.Close()
		}
	}
}

// clientHost is the host name clients should use for a listener: the
// address it is bound to when the server's certificate names that address
// (127.0.0.1 by default), else the first --hostname. A wildcard bind such
// as [::] names no host a client can verify (curl: "no alternative
// certificate subject name matches target host name '::'").
func clientHost(ln net.Listener, hostnames []string) string {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		if ip := tcp.IP.String(); slices.Contains(hostnames, ip) {
			return ip
		}
	}
	return hostnames[0]
}

// clientURL is scheme://host:port of a listener as clients reach it.
func clientURL(scheme string, ln net.Listener, hostnames []string) string {
	return scheme + "://" + net.JoinHostPort(clientHost(ln, hostnames), listenPort(ln))
}

func listenPort(ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// defaultCRLURL is the distribution point put in certificates when
// --crl-url is not given: the first --hostname and the CRL listener's real
// port (which may have been 0 on the command line).
func defaultCRLURL(ln net.Listener, hostnames []string) string {
	host := hostnames[0]
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), listenPort(ln)) + crl.DERPath
}
