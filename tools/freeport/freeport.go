// Package freeport reserves TCP ports for tests and demos that must tell
// one process a port that another will bind: the ACME server is told the
// http-01 or tls-alpn-01 port, and a client (lego, certbot, the agent)
// listens on it later. A server that can bind port 0 itself should do so
// and report its address instead (certmint serve --ready-file).
//
// Why not "bind 127.0.0.1:0, close, hand out the port": the kernel gives
// that same ephemeral range to every other port-0 bind and outgoing
// connection on the machine, so the port was often taken again before the
// client bound it (five failed tests in one run with other servers on the
// machine, issue 24). A reserved port instead
//   - comes from below the kernel's ephemeral range
//     (/proc/sys/net/ipv4/ip_local_port_range), where the kernel never
//     hands out ports on its own;
//   - is free on every address when reserved (clients bind loopback or
//     the wildcard);
//   - is locked (flock) on a file in $TMPDIR/certmint-ports until released
//     or the process exits, so cooperating processes (parallel tests,
//     several checkouts testing at once) never pick the same port.
//
// Only a process that binds fixed ports in that range without asking can
// still take one; that is rare, and then the child's bind fails loudly.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Port is a reserved port; Release gives it back.
type Port struct {
	N    int
	lock *os.File
}

// Release drops the reservation. The port itself is not touched: whoever
// bound it keeps it.
func (p *Port) Release() {
	if p != nil && p.lock != nil {
		p.lock.Close() // closing the file drops the flock
		p.lock = nil
	}
}

// lowest is the bottom of the range ports are drawn from: above the
// well-known and the commonly configured ports (8000s, 9000s).
const lowest = 20000

// Reserve picks a random free port below the ephemeral range and locks it.
func Reserve() (*Port, error) {
	lo, hi := portRange()
	dir := filepath.Dir(lockPath(0))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("freeport: %w", err)
	}
	_ = os.Chmod(dir, 0o1777) // shared by every user's tests, like /tmp
	for range 200 {
		n := lo + rand.IntN(hi-lo)
		lock, ok := tryLock(lockPath(n))
		if !ok {
			continue
		}
		if bindable(n) {
			return &Port{N: n, lock: lock}, nil
		}
		lock.Close()
	}
	return nil, fmt.Errorf("freeport: no free port in %d-%d after 200 tries", lo, hi-1)
}

// portRange is [lo, hi): from lowest up to the start of the kernel's
// ephemeral range (32768 by default on Linux).
func portRange() (lo, hi int) {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	return rangeOutside(string(b))
}

// rangeOutside is portRange for the contents of ip_local_port_range
// ("32768\t60999"; "" when unknown). When too little lies below the
// ephemeral range (it may start at 1024), the ports above it are used
// instead; when the kernel claims every port, the locks alone keep
// cooperating processes apart. Never empty: rand.IntN panics on 0.
func rangeOutside(ephemeral string) (lo, hi int) {
	start, end := 32768, 60999
	if f := strings.Fields(ephemeral); len(f) == 2 {
		s, err1 := strconv.Atoi(f[0])
		e, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && s <= e {
			start, end = s, e
		}
	}
	lo, hi = lowest, start
	if hi-lo < 1000 { // an unusual ephemeral range: use what is below it
		lo = max(1024, hi-10000)
	}
	if above := 65536 - max(end+1, 1024); hi-lo < 1000 && above > hi-lo {
		lo, hi = max(end+1, 1024), 65536
	}
	if hi <= lo {
		lo, hi = lowest, 65536
	}
	return lo, hi
}

// lockPath is the file whose flock reserves port n.
func lockPath(n int) string {
	return filepath.Join(os.TempDir(), "certmint-ports", strconv.Itoa(n))
}

func tryLock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false // another user's file we cannot open: taken
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// bindable reports whether nothing listens on port n on any address: the
// wildcard bind fails if 127.0.0.1, ::1 or any other address has it, and
// clients bind either loopback or the wildcard.
func bindable(n int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(n))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
