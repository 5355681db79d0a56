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
