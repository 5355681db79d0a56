package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// defaultDenied are targets validation never dials unless Config.Allowed
// names them: an applicant controls where its name points, and these ranges
// reach the validation host itself or its cloud provider (metadata services
// hand out credentials), or are not unicast at all.
var defaultDenied = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local, includes 169.254.169.254 metadata
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IPv6 metadata
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network", unspecified
	netip.MustParsePrefix("::/128"),             // IPv6 unspecified
	netip.MustParsePrefix("224.0.0.0/4"),        // IPv4 multicast
	netip.MustParsePrefix("ff00::/8"),           // IPv6 multicast
}

// policy decides which addresses validation may dial.
type policy struct {
	allowed, denied []netip.Prefix
}

func newPolicy(allowed, denied []netip.Prefix) policy {
	return policy{allowed: allowed, denied: denied}
}

// permits reports whether addr may be dialled: an explicit Denied entry
// always refuses; a non-empty Allowed list must contain addr, and an
// Allowed entry overrides the default denies.
func (p policy) permits(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || containsAddr(p.denied, addr) {
		return false
	}
	if containsAddr(p.allowed, addr) {
		return true
	}
	if len(p.allowed) > 0 {
		return false
	}
	return !containsAddr(defaultDenied, addr)
}

func containsAddr(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// policyError is a dial refused by the network policy.
type policyError struct{ addr netip.Addr }

func (e *policyError) Error() string {
	return fmt.Sprintf("address %s is not an allowed validation target", e.addr)
}

// dialer returns the net.Dialer every validation connection goes through.
// Its Control hook checks the policy on the exact address about to be
// connected, after all resolution, so neither redirects nor a second
// look-up inside some library can reach a denied address.
func (v *Validator) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: v.cfg.DialTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("parse dial address %q: %w", address, err)
			}
			if !v.policy.permits(ap.Addr()) {
				return &policyError{addr: ap.Addr().Unmap()}
			}
			return nil
		},
	}
}

// dialAttempt records one address tried and how it failed.
type dialAttempt struct {
	addr string
	err  error
}

// dialError is a failure to connect to every address a name resolved to.
type dialError struct {
	attempts []dialAttempt
}

func (e *dialError) Error() string {
	s := ""
	for i, a := range e.attempts {
		if i > 0 {
			s += "; "
		}
		s += describeDialErr(a.addr, a.err)
	}
	return s
}

// describeDialErr says what happened dialling addr in words an applicant
// can act on.
func describeDialErr(addr string, err error) string {
	var pe *policyError
	switch {
	case errors.As(err, &pe):
		return pe.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused by %s", addr)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("timeout connecting to %s", addr)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return fmt.Sprintf("%s is unreachable", addr)
	default:
		return fmt.Sprintf("error connecting to %s: %v", addr, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialTarget connects to host:port over TCP. An IP literal is dialled as is;
// a name is resolved through the configured resolver and its first IPv4
// address is tried before its first IPv6 address (RFC 8555 §8.3 leaves the
// choice to the server; trying one of each bounds the attempt's length).
// Failures are *lookupError (resolution) or *dialError (connection).
func (v *Validator) dialTarget(ctx context.Context, host string, port string) (net.Conn, error) {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		v4, v6, err := v.dns.lookupIP(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(v4) > 0 {
			addrs = append(addrs, v4[0])
		}
		if len(v6) > 0 {
			addrs = append(addrs, v6[0])
		}
	}
	d := v.dialer()
	de := &dialError{}
	for _, ip := range addrs {
		addr := net.JoinHostPort(ip.Unmap().String(), port)
		if !v.policy.permits(ip) {
			de.attempts = append(de.attempts, dialAttempt{addr, &policyError{addr: ip.Unmap()}})
			continue
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		de.attempts = append(de.attempts, dialAttempt{addr, err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, de
}
