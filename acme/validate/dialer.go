package validate

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// PolicyDialer returns a dialer that connects only where validation may:
// the same allowed and denied ranges (and the same built-in denial of
// link-local and metadata addresses), checked on the exact address about
// to be connected. Other outbound connections an applicant or operator
// can point somewhere (webhooks) use it, so one rule guards them all.
func PolicyDialer(allowed, denied []netip.Prefix, timeout time.Duration) *net.Dialer {
	v := &Validator{cfg: Config{DialTimeout: timeout}, policy: newPolicy(allowed, denied)}
	return v.dialer()
}

// CheckURL refuses an outbound URL that is not http(s) or whose host is an
// address the policy forbids. Names are checked when dialled.
func CheckURL(raw string, allowed, denied []netip.Prefix) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("the URL must not carry a user name or password; the receiver checks the signature instead")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !newPolicy(allowed, denied).permits(ip) {
		return &policyError{addr: ip.Unmap()}
	}
	return nil
}
