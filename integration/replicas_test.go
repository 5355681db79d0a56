package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/acme"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/tools/bench"
	"github.com/certmint/certmint/tools/pgtest"
)

// replicaSet is two certmint processes on one throwaway Postgres behind
// the test's round-robin TCP proxy. front is a view of the cluster as
// clients see it: the proxy's port, the shared root and validation port.
type replicaSet struct {
	pg    *pgtest.Cluster
	dsn   string
	a, b  *Server
	proxy *rrProxy
	front *Server
}

// ownCluster starts a Postgres cluster of the test's own, which the test
// may stop and start (the shared one of pgtest.Start must stay up), and
// returns it with a fresh database's DSN. It is removed at cleanup.
func ownCluster(t *testing.T) (*pgtest.Cluster, string) {
	t.Helper()
	pg, err := pgtest.StartCluster()
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return pg, dsn
}

// startReplicaSet starts a Postgres cluster of the test's own (the test
// restarts it), replica A on a fresh data dir, replica B on a copy of A's
// CA directory, and the proxy in front of both.
func startReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	pg, dsn := ownCluster(t)
	args := []string{"--rate-limits=false"}
	a := StartServer(t, ServerOptions{DB: dsn, Args: args})
	b := startReplica(t, a, dsn, args...)
	proxy := startProxy(t, fmt.Sprintf("127.0.0.1:%d", a.Port), fmt.Sprintf("127.0.0.1:%d", b.Port))
	front := &Server{t: t, Port: proxy.Port(), HTTPPort: a.HTTPPort, TLSPort: a.TLSPort, DNS: a.DNS,
		RootPEM: a.RootPEM, Roots: a.Roots}
	return &replicaSet{pg: pg, dsn: dsn, a: a, b: b, proxy: proxy, front: front}
}

// startReplica starts a second `certmint serve` on the same database: its
// own --data with a copy of first's CA directory (the documented way to
// share the CA), its own listening ports, and first's validation targets
// (http-01 and tls-alpn-01 ports, DNS), since a client behind the load
// balancer cannot know which replica validates.
func startReplica(t *testing.T, first *Server, dsn string, args ...string) *Server {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// cp -a keeps the 0600 key modes the CA insists on.
	if out, err := exec.Command("cp", "-a", filepath.Join(first.Data, "ca"), filepath.Join(data, "ca")).CombinedOutput(); err != nil {
		t.Fatalf("copy CA: %v: %s", err, out)
	}
	s := &Server{t: t, Data: data, opts: ServerOptions{DB: dsn, Data: data, Args: args},
		HTTPPort: first.HTTPPort, TLSPort: first.TLSPort, DNS: first.DNS,
		RootPEM: first.RootPEM, Roots: first.Roots}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// output is both replicas' logs, for failure messages.
func (r *replicaSet) output() string {
	return "replica A:\n" + r.a.Output() + "\nreplica B:\n" + r.b.Output()
}

// bothServed fails unless each backend got more connections than in before.
func (r *replicaSet) bothServed(t *testing.T, before []int64, what string) {
	t.Helper()
	after := r.proxy.Counts()
	t.Logf("%s: connections per replica %v", what, []int64{after[0] - before[0], after[1] - before[1]})
	for i := range after {
		if after[i] <= before[i] {
			t.Errorf("%s: replica %c served no connection (before %v, after %v)", what, 'A'+i, before, after)
		}
	}
}

// noKeepAlive is an HTTP client that opens a new connection per request,
// so that the proxy's per-connection round robin spreads one client's
// requests over both replicas.
func noKeepAlive(s *Server) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.Roots}, DisableKeepAlives: true}}
}

// TestReplicas is the issue-6 demonstration: two replicas on one Postgres
// behind a round-robin proxy serve real clients, share nonces, survive a
// SIGKILL of one replica and a Postgres restart.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("replicas test: skipped with -short")
	}
	r := startReplicaSet(t)

	t.Run("nonce-across-replicas", func(t *testing.T) { testCrossNonce(t, r) })
	t.Run("lego", func(t *testing.T) {
		before := r.proxy.Counts()
		user := &legoUser{key: newAccountKey(t, "ec")}
		cfg := lego.NewConfig(user)
		cfg.CADirURL = r.front.DirectoryURL()
		cfg.HTTPClient = noKeepAlive(r.front)
		client, err := lego.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(r.front.HTTPPort))); err != nil {
			t.Fatal(err)
		}
		if user.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
			t.Fatalf("register: %v\n%s", err, r.output())
		}
		res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"lego.replicas.test"}, Bundle: true})
		if err != nil {
			t.Fatalf("obtain: %v\n%s", err, r.output())
		}
		checkCertificate(t, r.front, res.Certificate, []string{"lego.replicas.test"}, 90*24*time.Hour)
		r.bothServed(t, before, "lego")
	})
	t.Run("certbot", func(t *testing.T) {
		certbotPath(t)
		before := r.proxy.Counts()
		dir := t.TempDir()
		runCertbot(t, r.front, dir, "certonly", "-d", "certbot.replicas.test", "--standalone",
			"--http-01-port", strconv.Itoa(r.front.HTTPPort), "--http-01-address", "127.0.0.1")
		chain, err := os.ReadFile(filepath.Join(dir, "c", "live", "certbot.replicas.test", "fullchain.pem"))
		if err != nil {
			t.Fatal(err)
		}
		checkCertificate(t, r.front, chain, []string{"certbot.replicas.test"}, 90*24*time.Hour)
		after := r.proxy.Counts()
		t.Logf("certbot: connections per replica %v (certbot keeps its connections alive)", []int64{after[0] - before[0], after[1] - before[1]})
	})
	t.Run("bench-8-workers-30s", func(t *testing.T) {
		before := r.proxy.Counts()
		certsBefore := countCerts(t, r.dsn)
		rep := runBenchCLI(t, r, r.front.DirectoryURL(), 8, "30s")
		t.Logf("bench through the proxy: %d flows in %.1fs = %.2f flows/s; flow p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms; %.1f requests/flow; bad-nonce retries %d; bench CPU %.1f ms/flow",
			rep.Flows, rep.Duration, rep.Throughput, rep.Flow.P50, rep.Flow.P90, rep.Flow.P99, rep.Flow.Max,
			rep.RequestsPerFlow, rep.Retries, rep.BenchCPUPerFlowMs)
		if rep.Flows == 0 {
			t.Fatalf("no flow completed\n%s", r.output())
		}
		if rep.Retries != 0 {
			t.Errorf("%d badNonce retries across replicas, want 0", rep.Retries)
		}
		for _, e := range rep.ErrorTypes {
			t.Errorf("bench errors: %d x %s (%s)", e.Count, e.Type, e.Example)
		}
		if rep.Errors != 0 || rep.Abandoned != 0 {
			t.Errorf("errors %d, abandoned %d", rep.Errors, rep.Abandoned)
		}
		if got := countCerts(t, r.dsn) - certsBefore; got != rep.Flows {
			t.Errorf("database gained %d certificates, bench reported %d flows", got, rep.Flows)
		}
		r.bothServed(t, before, "bench")
	})
	t.Run("kill-replica", func(t *testing.T) { testKillReplica(t, r) })
	t.Run("restart-postgres", func(t *testing.T) { testRestartPostgres(t, r) })
}

// runBenchCLI runs `certmint bench` against dirURL with the replicas'
// shared http-01 port and returns its JSON report.
func runBenchCLI(t *testing.T, r *replicaSet, dirURL string, workers int, duration string) bench.Report {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, r.a.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, nil, "bench", "--server", dirURL, "--root", root,
		"--workers", strconv.Itoa(workers), "--duration", duration,
		"--http01-listen", fmt.Sprintf("127.0.0.1:%d", r.a.HTTPPort), "--json")
	if code != 0 {
		t.Fatalf("bench exited %d: %s\n%s", code, errOut, r.output())
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench report is not JSON: %v\n%s", err, out)
	}
	return rep
}

// testCrossNonce takes a nonce from replica A and spends it on replica B:
// accepted once, then refused as badNonce by either replica.
func testCrossNonce(t *testing.T, r *replicaSet) {
	key := newAccountKey(t, "ec")
	hc := r.a.HTTPClient()
	nonce := fetchNonce(t, hc, r.a)
	post := func(s *Server) (int, map[string]any) {
		url := fmt.Sprintf("https://127.0.0.1:%d/acme/new-account", s.Port)
		msg, err := jws.Sign(key, jws.AlgFor(key.Public()), jws.Header{Nonce: nonce, URL: url}, []byte(`{"termsOfServiceAgreed":true}`))
		if err != nil {
			t.Fatal(err)
		}
		code, body, _, _ := postJOSE(t, hc, url, msg)
		return code, body
	}
	if code, body := post(r.b); code != http.StatusCreated {
		t.Fatalf("nonce from A used on B: status %d %v, want 201\n%s", code, body, r.output())
	}
	for _, s := range []*Server{r.b, r.a} {
		code, body := post(s)
		if code != http.StatusBadRequest || body["type"] != "urn:ietf:params:acme:error:badNonce" {
			t.Errorf("nonce replayed on replica port %d: status %d %v, want 400 badNonce", s.Port, code, body)
		}
	}
}

func fetchNonce(t *testing.T, hc *http.Client, s *Server) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("https://127.0.0.1:%d/acme/new-nonce", s.Port), nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		t.Fatalf("newNonce: status %d, no Replay-Nonce", resp.StatusCode)
	}
	return n
}

// postJOSE posts a JWS and returns the status, decoded body, headers and
// how long the answer took.
func postJOSE(t *testing.T, hc *http.Client, url string, msg []byte) (int, map[string]any, http.Header, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := hc.Post(url, "application/jose+json", bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("POST %s after %s: %v", url, time.Since(start), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	body := map[string]any{}
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, body, resp.Header, time.Since(start)
}

// loadRun is the record of a load loop: the serial of every certificate a
// client received, and when.
type loadRun struct {
	mu       sync.Mutex
	serials  []string
	okAt     []time.Time
	failures []string
}

func (l *loadRun) snapshot() ([]string, []time.Time, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.serials...), append([]time.Time(nil), l.okAt...), append([]string(nil), l.failures...)
}

// firstAfter waits up to limit for a certificate received after since
// and returns when it came; zero if none did.
func (l *loadRun) firstAfter(since time.Time, limit time.Duration) time.Time {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, okAt, _ := l.snapshot()
		for _, at := range okAt {
			if at.After(since) {
				return at
			}
		}
	}
	return time.Time{}
}

// report logs what the load received (after since) and the first few
// failed flows, and returns the serials received.
func (l *loadRun) report(t *testing.T, what string, since time.Time, sinceWhat string) ([]string, []string) {
	t.Helper()
	serials, okAt, failures := l.snapshot()
	after := 0
	for _, at := range okAt {
		if at.After(since) {
			after++
		}
	}
	t.Logf("%s: %d certificates received (%d after %s), %d flows failed", what, len(serials), after, sinceWhat, len(failures))
	for i, f := range failures {
		if i < 5 {
			t.Logf("  failed flow: %s", f)
		}
	}
	return serials, failures
}

// startLoad runs workers x/crypto/acme clients through the proxy, one
// full issuance after another (crashFlow: bounded at 8 s each), until ctx
// ends; wait blocks until they have stopped.
func startLoad(ctx context.Context, t *testing.T, r *replicaSet, workers int, prefix string) (l *loadRun, wait func()) {
	t.Helper()
	var keyAuths sync.Map
	stop := serveHTTP01(t, r.a, func(token string) string {
		v, _ := keyAuths.Load(token)
		ka, _ := v.(string)
		return ka
	})
	l = &loadRun{}
	var wg sync.WaitGroup
	for w := range workers {
		c := &acme.Client{Key: newAccountKey(t, "ec"), DirectoryURL: r.front.DirectoryURL(), HTTPClient: noKeepAlive(r.front)}
		if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
			t.Fatalf("register: %v\n%s", err, r.output())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				serial, err := crashFlow(ctx, c, &keyAuths, fmt.Sprintf("w%d-%d.%s.test", w, n, prefix))
				l.mu.Lock()
				if err == nil {
					l.serials = append(l.serials, serial)
					l.okAt = append(l.okAt, time.Now())
				} else if ctx.Err() == nil {
					l.failures = append(l.failures, err.Error())
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	return l, func() { wg.Wait(); stop() }
}

// testKillReplica kills replica B with SIGKILL twice under load, each
// time restarting it on the same data and ports after a moment.
func testKillReplica(t *testing.T, r *replicaSet) {
	ctx, cancel := context.WithTimeout(context.Background(), 16*time.Second)
	defer cancel()
	l, wait := startLoad(ctx, t, r, 4, "kill")
	var restartedAt time.Time
	var countsAtRestart []int64
	for _, at := range []time.Duration{3 * time.Second, 4 * time.Second} {
		time.Sleep(at)
		r.b.Kill()
		killedAt := time.Now()
		time.Sleep(1500 * time.Millisecond)
		r.b.Start() // same data, same ports: the proxy finds it again
		restartedAt = time.Now()
		countsAtRestart = r.proxy.Counts()
		t.Logf("replica B down for %s", restartedAt.Sub(killedAt).Round(time.Millisecond))
	}
	wait()
	serials, okAt, failures := l.snapshot()
	after := 0
	for _, at := range okAt {
		if at.After(restartedAt) {
			after++
		}
	}
	t.Logf("kill-replica: %d certificates received (%d after the last restart), %d flows cut by the kills",
		len(serials), after, len(failures))
	for i, f := range failures {
		if i < 5 {
			t.Logf("  failed flow: %s", f)
		}
	}
	if len(serials) == 0 || after == 0 {
		t.Fatalf("no certificate issued (after the last restart: %d)\n%s", after, r.output())
	}
	if c := r.proxy.Counts(); c[1] <= countsAtRestart[1] {
		t.Errorf("the restarted replica B served no connection (%v -> %v)", countsAtRestart, c)
	}
	checkReplicaDB(t, r.dsn, serials)
}

// testRestartPostgres stops Postgres under load, checks that requests get
// a quick 503 serverInternal with Retry-After, starts it again and checks
// that service resumes without restarting certmint.
func testRestartPostgres(t *testing.T, r *replicaSet) {
	// A nonce taken while the database is up, spent while it is down, so
	// the request gets as far as the database.
	key := newAccountKey(t, "ec")
	hc := r.a.HTTPClient()
	nonce := fetchNonce(t, hc, r.a)

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	l, wait := startLoad(ctx, t, r, 4, "pg")
	time.Sleep(3 * time.Second)
	if err := r.pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	for _, s := range []*Server{r.a, r.b} {
		url := fmt.Sprintf("https://127.0.0.1:%d/acme/new-account", s.Port)
		msg, err := jws.Sign(key, jws.AlgFor(key.Public()), jws.Header{Nonce: nonce, URL: url}, []byte(`{"termsOfServiceAgreed":true}`))
		if err != nil {
			t.Fatal(err)
		}
		code, body, hdr, took := postJOSE(t, hc, url, msg)
		t.Logf("Postgres down: replica port %d answered %d %v in %s, Retry-After %q", s.Port, code, body["type"], took.Round(time.Millisecond), hdr.Get("Retry-After"))
		if code != http.StatusServiceUnavailable || body["type"] != "urn:ietf:params:acme:error:serverInternal" || hdr.Get("Retry-After") == "" {
			t.Errorf("while Postgres is down: status %d %v, Retry-After %q; want 503 serverInternal with Retry-After", code, body, hdr.Get("Retry-After"))
		}
		if took > 5*time.Second {
			t.Errorf("the answer took %s: requests hang while Postgres is down", took)
		}
	}
	time.Sleep(2 * time.Second)
	if err := r.pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	t.Logf("Postgres was down for %s", startedAt.Sub(stoppedAt).Round(time.Millisecond))

	// Service resumes by itself: a fresh flow through the proxy succeeds
	// within seconds, and the load's retries issue certificates again.
	first := l.firstAfter(startedAt, 15*time.Second)
	if first.IsZero() {
		t.Fatalf("no certificate issued within 15 s of Postgres coming back\n%s", r.output())
	}
	t.Logf("first certificate %s after Postgres came back", first.Sub(startedAt).Round(time.Millisecond))
	wait()
	serials, failures := l.report(t, "restart-postgres", startedAt, "Postgres came back")
	for _, f := range failures {
		if strings.Contains(f, "badNonce") {
			t.Errorf("badNonce during the Postgres restart: %s", f)
		}
	}
	checkReplicaDB(t, r.dsn, serials)
}

// countCerts is the number of certificates in the database.
func countCerts(t *testing.T, dsn string) int64 {
	t.Helper()
	conn := pgConnect(t, dsn)
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT COUNT(*) FROM certificates").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// checkReplicaDB checks the database after a fault: every certificate a
// client received is stored, serials are unique, and no order is stuck in
// processing or valid without its certificate.
func checkReplicaDB(t *testing.T, dsn string, received []string) {
	t.Helper()
	ctx := context.Background()
	conn := pgConnect(t, dsn)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT serial FROM certificates")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored[s]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, s := range received {
		if stored[s] == 0 {
			missing++
			t.Errorf("certificate %s was received by a client but is not in the database", s)
		}
	}
	seen := map[string]bool{}
	for _, s := range received {
		if seen[s] {
			t.Errorf("two clients received serial %s", s)
		}
		seen[s] = true
	}
	for s, n := range stored {
		if n > 1 {
			t.Errorf("serial %s stored %d times", s, n)
		}
	}
	// Finalize moves an order from ready to valid in the transaction that
	// stores its certificate: no fault may leave one in between.
	var processing, orphaned int
	err = conn.QueryRow(ctx, `SELECT
		COUNT(*) FILTER (WHERE status = 'processing'),
		COUNT(*) FILTER (WHERE status = 'valid' AND NOT EXISTS
			(SELECT 1 FROM certificates c WHERE c.id = orders.certificate_id))
		FROM orders`).Scan(&processing, &orphaned)
	if err != nil {
		t.Fatal(err)
	}
	if processing > 0 {
		t.Errorf("%d orders stuck in processing; finalize must never leave one there", processing)
	}
	if orphaned > 0 {
		t.Errorf("%d valid orders without their certificate", orphaned)
	}
	t.Logf("database: %d certificates, all %d received present (%d missing)", len(stored), len(received), missing)
}

// TestReplicaScaling measures one replica against two behind the proxy,
// for docs/scaling.md, with what Postgres did per flow. It runs only with
// CERTMINT_SCALING=1.
func TestReplicaScaling(t *testing.T) {
	if os.Getenv("CERTMINT_SCALING") != "1" {
		t.Skip("set CERTMINT_SCALING=1 to measure (2 x 15 s of load)")
	}
	r := startReplicaSet(t)
	for _, tc := range []struct{ name, url string }{
		{"one replica", r.a.DirectoryURL()},
		{"two replicas", r.front.DirectoryURL()},
	} {
		before := pgStats(t, r.dsn)
		pgPID := postmasterPID(t, r.dsn)
		cpu0 := [3]float64{procCPU(r.a.pid()), procCPU(r.b.pid()), treeCPU(pgPID)}
		rep := runBenchCLI(t, r, tc.url, 8, "15s")
		cpu1 := [3]float64{procCPU(r.a.pid()), procCPU(r.b.pid()), treeCPU(pgPID)}
		after := pgStats(t, r.dsn)
		f := float64(max(rep.Flows, 1))
		t.Logf("%s: %d flows, %.2f flows/s, p50 %.0f ms, p99 %.0f ms, errors %d, bench CPU %.1f ms/flow; "+
			"Postgres per flow: %.1f commits, %.1f rows inserted, %.1f rows updated; backends %d; "+
			"CPU ms/flow: replica A %.1f, replica B %.1f, Postgres %.1f",
			tc.name, rep.Flows, rep.Throughput, rep.Flow.P50, rep.Flow.P99, rep.Errors, rep.BenchCPUPerFlowMs,
			float64(after[0]-before[0])/f, float64(after[1]-before[1])/f, float64(after[2]-before[2])/f, after[3],
			1000*(cpu1[0]-cpu0[0])/f, 1000*(cpu1[1]-cpu0[1])/f, 1000*(cpu1[2]-cpu0[2])/f)
	}
}

// pgStats returns commits, rows inserted, rows updated and connections of
// the database from pg_stat_database (the counters lag by up to a second).
func pgStats(t *testing.T, dsn string) [4]int64 {
	t.Helper()
	time.Sleep(time.Second)
	conn := pgConnect(t, dsn)
	defer conn.Close(context.Background())
	var s [4]int64
	if err := conn.QueryRow(context.Background(), `SELECT xact_commit, tup_inserted, tup_updated, numbackends
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&s[0], &s[1], &s[2], &s[3]); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// procStat returns a process's parent pid and its CPU seconds (user +
// system, and those of its reaped children) from /proc (Linux).
func procStat(pid int) (ppid int, cpu float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields after the parenthesised command name: state is field 3.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 15 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseFloat(f[i], 64)
		cpu += v / 100 // USER_HZ
	}
	return ppid, cpu
}

func procCPU(pid int) float64 { _, c := procStat(pid); return c }

// treeCPU is the CPU seconds of pid and its direct children.
func treeCPU(pid int) float64 {
	total := procCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, c := procStat(child); ppid == pid {
			total += c
		}
	}
	return total
}

// postmasterPID is the pid of the Postgres server: the parent of a backend.
func postmasterPID(t *testing.T, dsn string) int {
	t.Helper()
	conn := pgConnect(t, dsn)
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	ppid, _ := procStat(backend)
	return ppid
}
