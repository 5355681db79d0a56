package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/tools/pgtest"
)

// TestPostgresFailover is issue 23's failover demonstration: two certmint
// replicas on a multi-host --db URL whose first host is the primary and
// second a synchronous streaming standby. Under load the primary crashes
// (immediate shutdown); while no host accepts writes, requests get a quick
// 503 and /readyz says 503; then the standby is promoted and issuance
// resumes with no certmint restart. Every certificate a client received
// is on the new primary, serials unique.
func TestPostgresFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test: skipped with -short")
	}
	primary, dsn := ownCluster(t)
	standby, err := primary.StartStandby("standby1")
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := primary.RequireSync(ctx, "standby1"); err != nil {
		t.Fatal(err)
	}
	// postgres://postgres@127.0.0.1:P1,127.0.0.1:P2/t_1?...&target_session_attrs=read-write
	hostPort := func(c *pgtest.Cluster) string { return fmt.Sprintf("127.0.0.1:%d", c.Port()) }
	multi := strings.Replace(dsn, hostPort(primary), hostPort(primary)+","+hostPort(standby), 1) + "&target_session_attrs=read-write"
	standbyDSN := strings.Replace(dsn, hostPort(primary), hostPort(standby), 1)

	args := []string{"--rate-limits=false"}
	a := StartServer(t, ServerOptions{DB: multi, Args: args})
	b := startReplica(t, a, multi, args...)
	proxy := startProxy(t, fmt.Sprintf("127.0.0.1:%d", a.Port), fmt.Sprintf("127.0.0.1:%d", b.Port))
	r := &replicaSet{pg: primary, dsn: multi, a: a, b: b, proxy: proxy,
		front: &Server{t: t, Port: proxy.Port(), HTTPPort: a.HTTPPort, TLSPort: a.TLSPort, DNS: a.DNS, RootPEM: a.RootPEM, Roots: a.Roots}}
	pids := []int{a.pid(), b.pid()}

	key := newAccountKey(t, "ec")
	hc := a.HTTPClient()
	nonce := fetchNonce(t, hc, a) // spent while no host is writable

	loadCtx, stopLoad := context.WithTimeout(ctx, 30*time.Second)
	defer stopLoad()
	l, wait := startLoad(loadCtx, t, r, 4, "failover")
	time.Sleep(4 * time.Second)
	if serials, _, _ := l.snapshot(); len(serials) == 0 {
		t.Fatalf("no certificate issued before the failover\n%s", r.output())
	}

	if err := primary.Crash(); err != nil {
		t.Fatal(err)
	}
	crashedAt := time.Now()

	// No host accepts writes now: the primary is gone, the standby is
	// read-only. Replicas say so at once instead of hanging.
	for _, s := range []*Server{a, b} {
		waitReadyz(t, s, http.StatusServiceUnavailable, 5*time.Second)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/acme/new-account", a.Port)
	msg, err := jws.Sign(key, jws.AlgFor(key.Public()), jws.Header{Nonce: nonce, URL: url}, []byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		t.Fatal(err)
	}
	code, body, hdr, took := postJOSE(t, hc, url, msg)
	t.Logf("no writable host: new-account answered %d %v in %s, Retry-After %q, request id %q",
		code, body["type"], took.Round(time.Millisecond), hdr.Get("Retry-After"), hdr.Get("X-Request-Id"))
	if code != http.StatusServiceUnavailable || body["type"] != "urn:ietf:params:acme:error:serverInternal" ||
		hdr.Get("Retry-After") == "" || hdr.Get("X-Request-Id") == "" {
		t.Errorf("with no writable host: status %d %v, Retry-After %q, X-Request-Id %q; want 503 serverInternal with both",
			code, body, hdr.Get("Retry-After"), hdr.Get("X-Request-Id"))
	}
	if took > 5*time.Second {
		t.Errorf("the answer took %s: requests hang while no host is writable", took)
	}

	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promotedAt := time.Now()
	// certmint's own recovery: a new account on each replica, probed
	// without the client-side retries acme clients make on a 503.
	writeAt := map[int]time.Duration{} // by replica port
	for _, s := range []*Server{a, b} {
		writeAt[s.Port] = firstWrite(t, s, 15*time.Second).Sub(promotedAt)
	}
	for _, s := range []*Server{a, b} {
		waitReadyz(t, s, http.StatusOK, 15*time.Second)
	}
	readyAt := time.Now()
	countsAtPromotion := proxy.Counts()

	// Issuance resumes by itself: the load's next flows succeed. The
	// load's clients (x/crypto/acme) wait out the Retry-After of the 503s
	// they got during the outage, so they lag the server by up to that.
	first := l.firstAfter(promotedAt, 20*time.Second)
	if first.IsZero() {
		t.Fatalf("no certificate issued within 20 s of the promotion\n%s", r.output())
	}
	t.Logf("failover: standby promoted %s after the primary crashed; first write accepted %s (replica A) and %s (replica B) "+
		"after the promotion; both /readyz 200 %s after it; the load's first certificate %s after the promotion, %s after the crash",
		promotedAt.Sub(crashedAt).Round(time.Millisecond), writeAt[a.Port].Round(time.Millisecond), writeAt[b.Port].Round(time.Millisecond),
		readyAt.Sub(promotedAt).Round(time.Millisecond), first.Sub(promotedAt).Round(time.Millisecond), first.Sub(crashedAt).Round(time.Millisecond))
	if d := first.Sub(promotedAt); d > 15*time.Second {
		t.Errorf("issuance resumed %s after the promotion, want within 15 s", d)
	}

	wait()
	serials, _ := l.report(t, "failover load", promotedAt, "the promotion")
	if got := []int{a.pid(), b.pid()}; got[0] != pids[0] || got[1] != pids[1] {
		t.Errorf("replica processes changed (%v -> %v): certmint was restarted", pids, got)
	}
	if c := proxy.Counts(); c[0] <= countsAtPromotion[0] || c[1] <= countsAtPromotion[1] {
		t.Errorf("a replica served nothing after the promotion (%v -> %v)", countsAtPromotion, c)
	}
	// Checked on the promoted standby itself, not through the URL.
	checkReplicaDB(t, standbyDSN, serials)
}

// firstWrite creates accounts on s, one attempt every 100 ms, until one
// is created, and returns when; it fails after limit.
func firstWrite(t *testing.T, s *Server, limit time.Duration) time.Time {
	t.Helper()
	hc := s.HTTPClient()
	hc.Timeout = 5 * time.Second
	url := fmt.Sprintf("https://127.0.0.1:%d/acme/new-account", s.Port)
	start := time.Now()
	last := ""
	for time.Since(start) < limit {
		req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("https://127.0.0.1:%d/acme/new-nonce", s.Port), nil)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		key := newAccountKey(t, "ec")
		msg, err := jws.Sign(key, jws.AlgFor(key.Public()), jws.Header{Nonce: resp.Header.Get("Replay-Nonce"), URL: url},
			[]byte(`{"termsOfServiceAgreed":true}`))
		if err != nil {
			t.Fatal(err)
		}
		code, body, _, _ := postJOSE(t, hc, url, msg)
		if code == http.StatusCreated {
			return time.Now()
		}
		last = fmt.Sprintf("%d %v", code, body["type"])
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("replica port %d accepted no new account within %s of the promotion; last: %s\n%s", s.Port, limit, last, s.Output())
	return time.Time{}
}
