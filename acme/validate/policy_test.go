package validate

import (
	"net/netip"
	"testing"
)

func TestPolicyPermits(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	tests := []struct {
		name            string
		allowed, denied []netip.Prefix
		addr            string
		want            bool
	}{
		{name: "ok/loopback", addr: "127.0.0.1", want: true},
		{name: "ok/private", addr: "10.1.2.3", want: true},
		{name: "ok/ipv6-loopback", addr: "::1", want: true},
		{name: "fail/metadata", addr: "169.254.169.254"},
		{name: "fail/metadata-v4-mapped", addr: "::ffff:169.254.169.254"},
		{name: "fail/aws-ipv6-metadata", addr: "fd00:ec2::254"},
		{name: "fail/alibaba-metadata", addr: "100.100.100.200"},
		{name: "fail/ipv6-link-local", addr: "fe80::1"},
		{name: "fail/unspecified", addr: "0.0.0.0"},
		{name: "fail/ipv6-unspecified", addr: "::"},
		{name: "fail/multicast", addr: "239.1.1.1"},
		{name: "fail/ipv6-multicast", addr: "ff02::1"},
		{name: "ok/allowed-beats-default-deny", allowed: pfx("169.254.0.0/16"), addr: "169.254.1.1", want: true},
		{name: "fail/outside-allowed", allowed: pfx("10.0.0.0/8"), addr: "127.0.0.1"},
		{name: "fail/denied-beats-allowed", allowed: pfx("10.0.0.0/8"), denied: pfx("10.9.0.0/16"), addr: "10.9.0.1"},
		{name: "fail/denied-added", denied: pfx("192.168.0.0/16"), addr: "192.168.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(tc.allowed, tc.denied)
			if got := p.permits(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("permits(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}
