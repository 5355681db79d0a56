package integration

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rrProxy is a round-robin TCP proxy on 127.0.0.1, the test's stand-in for
// haproxy in TCP mode: TLS passes through untouched, each new client
// connection goes to the next backend, and a backend that refuses the
// connection (a killed replica) is skipped for the next one, as a load
// balancer with health checks would.
type rrProxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	counts   []atomic.Int64 // connections handed to each backend

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startProxy listens on a free loopback port and forwards to backends
// (host:port). It is closed at the end of the test.
func startProxy(t testing.TB, backends ...string) *rrProxy {
	t.Helper()
	return startProxyOn(t, "127.0.0.1:0", backends...)
}

// startProxyOn is startProxy on a given address, e.g. the port a single
// server had before it moved behind the proxy.
func startProxyOn(t testing.TB, addr string, backends ...string) *rrProxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &rrProxy{ln: ln, backends: backends, counts: make([]atomic.Int64, len(backends)),
		conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Port is the proxy's listening port.
func (p *rrProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Counts returns how many connections each backend received so far.
func (p *rrProxy) Counts() []int64 {
	out := make([]int64, len(p.counts))
	for i := range p.counts {
		out[i] = p.counts[i].Load()
	}
	return out
}

// Close stops accepting and cuts every open connection.
func (p *rrProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *rrProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *rrProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

// handle dials the next live backend and copies both ways until either
// side closes.
func (p *rrProxy) handle(client net.Conn) {
	defer p.wg.Done()
	p.track(client, true)
	defer p.track(client, false)
	defer client.Close()
	start := p.next.Add(1)
	var backend net.Conn
	for i := range uint64(len(p.backends)) {
		idx := (start + i) % uint64(len(p.backends))
		c, err := net.DialTimeout("tcp", p.backends[idx], 2*time.Second)
		if err == nil {
			p.counts[idx].Add(1)
			backend = c
			break
		}
	}
	if backend == nil {
		return // no backend up: the client sees the connection closed
	}
	p.track(backend, true)
	defer p.track(backend, false)
	defer backend.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}
