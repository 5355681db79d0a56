package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestReserveOutsideEphemeralAndExclusive: a reserved port is bindable,
// lies below the kernel's ephemeral range, and is not handed out again
// while held (the lock is what keeps parallel tests apart).
func TestReserveOutsideEphemeralAndExclusive(t *testing.T) {
	_, hi := portRange()
	held := map[int]bool{}
	var ports []*Port
	defer func() {
		for _, p := range ports {
			p.Release()
		}
	}()
	for range 50 {
		p, err := Reserve()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
		if p.N < lowest-10000 || p.N >= hi {
			t.Fatalf("port %d outside [.., %d)", p.N, hi)
		}
		if held[p.N] {
			t.Fatalf("port %d handed out twice while held", p.N)
		}
		held[p.N] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.N))
		if err != nil {
			t.Fatalf("reserved port %d is not bindable: %v", p.N, err)
		}
		ln.Close()
	}
	// Released, the lock can be taken again.
	p := ports[0]
	p.Release()
	f, ok := tryLock(lockPath(p.N))
	if !ok {
		t.Fatalf("port %d still locked after Release", p.N)
	}
	f.Close()
}

// TestReserveSkipsBoundPort: a port something listens on is never
// reserved.
func TestReserveSkipsBoundPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if bindable(ln.Addr().(*net.TCPAddr).Port) {
		t.Fatal("a port in use counted as bindable")
	}
}

// TestRangeOutside: the range is below the kernel's ephemeral ports when
// there is room, above them otherwise, and never empty (rand.IntN(0)
// panics: an ephemeral range starting at 1024 used to crash Reserve).
func TestRangeOutside(t *testing.T) {
	for name, tc := range map[string]struct {
		ephemeral string
		lo, hi    int
	}{
		"ok/linux-default":      {"32768\t60999\n", lowest, 32768},
		"ok/unreadable":         {"", lowest, 32768},
		"ok/low-start":          {"15000 60999", 5000, 15000},
		"ok/from-1024":          {"1024 60999", 61000, 65536},
		"ok/from-1024-to-65535": {"1024 65535", lowest, 65536},
	} {
		t.Run(name, func(t *testing.T) {
			lo, hi := rangeOutside(tc.ephemeral)
			if lo != tc.lo || hi != tc.hi {
				t.Fatalf("rangeOutside(%q) = [%d, %d), want [%d, %d)", tc.ephemeral, lo, hi, tc.lo, tc.hi)
			}
		})
	}
}
