package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/certmint/certmint/internal/webhook"
	"github.com/certmint/certmint/tools/pgtest"
)

// hookEvent is one POST a receiver got.
type hookEvent struct {
	ID, Type  string
	Data      map[string]any
	SigOK     bool
	HeaderID  string
	Answered  int
	Attempt   string
	ArrivedAt time.Time
}

// hookReceiver is a webhook receiver on 127.0.0.1 that checks each
// signature with secret and answers status() (200 unless a test says).
type hookReceiver struct {
	URL    string
	secret []byte
	status atomic.Int32
	mu     sync.Mutex
	got    []hookEvent
}

func startReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	r := &hookReceiver{secret: []byte(secret)}
	r.status.Store(http.StatusOK)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			ID, Type string
			Data     map[string]any
		}
		_ = json.Unmarshal(body, &env)
		code := int(r.status.Load())
		r.mu.Lock()
		r.got = append(r.got, hookEvent{ID: env.ID, Type: env.Type, Data: env.Data, HeaderID: req.Header.Get(webhook.EventIDHeader),
			SigOK: webhook.Verify(r.secret, body, req.Header.Get(webhook.SignatureHeader)), Answered: code,
			Attempt: req.Header.Get("Certmint-Delivery-Attempt"), ArrivedAt: time.Now()})
		r.mu.Unlock()
		w.WriteHeader(code)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.URL = "http://" + ln.Addr().String() + "/hook"
	return r
}

// wait returns the events received so far once cond holds for them.
func (r *hookReceiver) wait(t *testing.T, limit time.Duration, what string, cond func([]hookEvent) bool) []hookEvent {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		got := append([]hookEvent(nil), r.got...)
		r.mu.Unlock()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; received %+v", what, limit, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ofType(evs []hookEvent, typ string) []hookEvent {
	var out []hookEvent
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// dbOf are the admin commands' flags for s's database.
func dbOf(s *Server) []string {
	if s.opts.DB != "" {
		return []string{"--db", s.opts.DB}
	}
	return []string{"--data", s.Data}
}

// addWebhook runs `certmint admin webhook add` with the secret in a file.
func addWebhook(t *testing.T, s *Server, url, secret, events string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"admin", "webhook", "add", "--url", url, "--secret-file", f}, dbOf(s)...)
	if events != "" {
		args = append(args, "--events", events)
	}
	out, errOut, code := runCLI(t, nil, args...)
	if code != 0 || !strings.HasPrefix(out, "added ") {
		t.Fatalf("webhook add: %d %s %s", code, out, errOut)
	}
	return strings.TrimSpace(strings.TrimPrefix(out, "added "))
}

// TestWebhookDelivery is issue 17's webhook demonstration: a receiver on
// 127.0.0.1 gets certificate.issued with a valid signature; while it
// answers 500 the event is retried, survives a restart of certmint, and
// arrives (same event id) once the receiver recovers. The console lists
// the failures; the secret shows nowhere. On SQLite and on Postgres.
func TestWebhookDelivery(t *testing.T) {
	for engine, dsn := range engines(t) {
		t.Run(engine, func(t *testing.T) { testWebhookDelivery(t, dsn(t)) })
	}
}

func testWebhookDelivery(t *testing.T, dsn string) {
	const secret = "webhook-secret-0123456789"
	rcv := startReceiver(t, secret)
	rcv.status.Store(http.StatusInternalServerError)
	s := StartServer(t, ServerOptions{DB: dsn, Args: []string{"--webhook-retry-base", "1s", "--webhook-poll", "200ms"}})

	// Bad input on the CLI: one line, exit 2, nothing written.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "http://169.254.169.254/latest/meta-data"}, "not an allowed"},
		{[]string{"--url", rcv.URL}, "--secret-file"},
		{[]string{"--url", rcv.URL, "--secret-file", "/nonexistent", "--events", "cert.made"}, "--events"},
	} {
		_, errOut, code := runCLI(t, nil, append(append([]string{"admin", "webhook", "add"}, dbOf(s)...), c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("webhook add %v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
	if _, errOut, code := runCLI(t, nil, append([]string{"admin", "inventory", "--state", "late"}, dbOf(s)...)...); code != 2 || !strings.Contains(errOut, "overdue") {
		t.Errorf("admin inventory --state late: exit %d, %q; want 2 and the list of states", code, errOut)
	}
	id := addWebhook(t, s, rcv.URL, secret, "certificate.issued")
	out, _, _ := runCLI(t, nil, append([]string{"admin", "webhook", "list"}, dbOf(s)...)...)
	if !strings.Contains(out, id) || !strings.Contains(out, rcv.URL) || strings.Contains(out, secret) {
		t.Fatalf("webhook list:\n%s", out)
	}

	leaf, _ := obtainWithLego(t, s, "hooked.fleet.test")
	serial := fmt.Sprintf("%x", leaf.SerialNumber.Bytes())
	failed := rcv.wait(t, 15*time.Second, "two failed attempts", func(evs []hookEvent) bool { return len(evs) >= 2 })
	first := failed[0]
	if first.Type != webhook.CertificateIssued || !first.SigOK || first.HeaderID != first.ID || first.Data["serial"] != serial {
		t.Fatalf("first attempt: %+v, want certificate.issued for %s with a valid signature", first, serial)
	}
	if out, _, code := runCLI(t, nil, append([]string{"admin", "inventory"}, dbOf(s)...)...); code != 0 || !strings.Contains(out, "hooked.fleet.test") || !strings.Contains(out, "healthy") {
		t.Errorf("admin inventory: exit %d\n%s", code, out)
	}
	c := signedInConsole(t, s)
	if page := mustBody(t, c, s.AdminURL()+"/webhooks?status=pending"); !strings.Contains(page, "HTTP 500") || !strings.Contains(page, first.ID) {
		t.Errorf("the console does not show the failing delivery:\n%s", page)
	}

	// A restart while the delivery is pending: it is in the database.
	s.Stop()
	rcv.mu.Lock()
	before := len(rcv.got)
	rcv.mu.Unlock()
	rcv.status.Store(http.StatusOK)
	s.Start()
	got := rcv.wait(t, 30*time.Second, "the delivery after recovery", func(evs []hookEvent) bool {
		return len(evs) > before && evs[len(evs)-1].Answered == http.StatusOK
	})
	last := got[len(got)-1]
	if last.ID != first.ID || !last.SigOK || last.Type != webhook.CertificateIssued {
		t.Fatalf("after recovery: %+v, want the same event %s, signed", last, first.ID)
	}
	t.Logf("certificate.issued %s: %d attempts, delivered %s after the first", first.ID, len(got), last.ArrivedAt.Sub(first.ArrivedAt).Round(time.Millisecond))
	// Delivered once: no further posts of it.
	time.Sleep(1500 * time.Millisecond)
	rcv.mu.Lock()
	n := 0
	for _, e := range rcv.got {
		if e.ID == first.ID && e.Answered == http.StatusOK {
			n++
		}
	}
	rcv.mu.Unlock()
	if n != 1 {
		t.Errorf("the event was delivered %d times after it was acknowledged, want 1", n)
	}
	if page := mustBody(t, signedInConsole(t, s), s.AdminURL()+"/webhooks?status=delivered"); !strings.Contains(page, first.ID) || strings.Contains(page, secret) {
		t.Errorf("the console's delivered list:\n%s", page)
	}
	if strings.Contains(s.Output(), secret) {
		t.Error("the secret is in the server log")
	}
	if out, _, code := runCLI(t, nil, append([]string{"admin", "webhook", "remove", id}, dbOf(s)...)...); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("webhook remove: %d %s", code, out)
	}
	if _, errOut, code := runCLI(t, nil, append([]string{"admin", "webhook", "remove", id}, dbOf(s)...)...); code != 2 || !strings.Contains(errOut, "no webhook endpoint") {
		t.Errorf("webhook remove twice: %d %s", code, errOut)
	}
}

// inventoryJSON runs `certmint admin inventory --json` with args.
func inventoryJSON(t *testing.T, s *Server, args ...string) []map[string]any {
	t.Helper()
	out, errOut, code := runCLI(t, nil, append([]string{"admin", "inventory", "--json", "--data", s.Data}, args...)...)
	if code != 0 {
		t.Fatalf("admin inventory: %d %s", code, errOut)
	}
	var ls []map[string]any
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("admin inventory --json: %v\n%s", err, out)
	}
	return ls
}

func gaugeValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	fam := scrapeMetrics(t, addr)[name]
	if fam == nil || len(fam.Metric) != 1 {
		t.Fatalf("/metrics has no %s", name)
	}
	return fam.Metric[0].Gauge.GetValue()
}

// TestOverdueLineage is issue 17's overdue demonstration, with the real
// wait. A profile of 2 minutes (issued backdated by one minute, so it
// lives one more minute; its window ends 40 s after issuance) is issued
// and not renewed: the lineage turns overdue, renewal.overdue arrives at
// the receiver, certmint_renewals_overdue shows 1, and a renewal with
// ARI replaces makes the lineage healthy again.
func TestOverdueLineage(t *testing.T) {
	const secret = "overdue-secret-0123456789"
	rcv := startReceiver(t, secret)
	s := StartServer(t, ServerOptions{Metrics: true, Args: []string{"--profile", "short=2m",
		"--webhook-retry-base", "1s", "--webhook-poll", "500ms"}})
	addWebhook(t, s, rcv.URL, secret, "renewal.overdue")

	client, _ := newLegoClient(t, s, "ec")
	const name = "late.fleet.test"
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true, Profile: "short"})
	if err != nil {
		t.Fatalf("obtain: %v\n%s", err, s.Output())
	}
	leaf := parseLeaf(t, res.Certificate)
	serial := fmt.Sprintf("%x", leaf.SerialNumber.Bytes())
	ls := inventoryJSON(t, s, "--name", name)
	if len(ls) != 1 || ls[0]["state"] != "healthy" || ls[0]["serial"] != serial {
		t.Fatalf("inventory after issuance: %+v", ls)
	}
	lineage := ls[0]["id"]
	if v := gaugeValue(t, s.MetricsAddr(), "certmint_renewals_overdue"); v != 0 {
		t.Fatalf("certmint_renewals_overdue = %v before the window ended", v)
	}
	windowEnd, _ := time.Parse(time.RFC3339, ls[0]["renewal_window_end"].(string))
	t.Logf("issued %s, window ends %s (in %s), expires %s", serial, windowEnd, time.Until(windowEnd).Round(time.Second), leaf.NotAfter)

	evs := rcv.wait(t, time.Until(windowEnd)+15*time.Second, "renewal.overdue", func(evs []hookEvent) bool {
		return len(ofType(evs, webhook.RenewalOverdue)) > 0
	})
	ev := ofType(evs, webhook.RenewalOverdue)[0]
	if !ev.SigOK || ev.Data["serial"] != serial || ev.Data["lineage_id"] != lineage || ev.ArrivedAt.Before(windowEnd) {
		t.Fatalf("renewal.overdue: %+v (window end %s)", ev, windowEnd)
	}
	t.Logf("renewal.overdue arrived %s after the window ended", ev.ArrivedAt.Sub(windowEnd).Round(time.Millisecond))
	if v := gaugeValue(t, s.MetricsAddr(), "certmint_renewals_overdue"); v != 1 {
		t.Fatalf("certmint_renewals_overdue = %v while overdue, want 1", v)
	}
	if ls := inventoryJSON(t, s, "--state", "overdue"); len(ls) != 1 || ls[0]["id"] != lineage {
		t.Fatalf("inventory --state overdue: %+v", ls)
	}
	c := signedInConsole(t, s)
	if page := mustBody(t, c, s.AdminURL()+"/"); !strings.Contains(page, `id="count-overdue">1<`) {
		t.Errorf("the dashboard does not count the overdue lineage")
	}

	// The renewal: ARI replaces (RFC 9773 §5) names the late certificate.
	ariID, err := certificate.MakeARICertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true, Profile: "short", ReplacesCertID: ariID})
	if err != nil {
		t.Fatalf("renew with replaces: %v\n%s", err, s.Output())
	}
	renewed := parseLeaf(t, res2.Certificate)
	ls = inventoryJSON(t, s, "--name", name)
	if len(ls) != 1 || ls[0]["id"] != lineage || ls[0]["state"] != "healthy" || ls[0]["serial"] != fmt.Sprintf("%x", renewed.SerialNumber.Bytes()) ||
		ls[0]["renewals"] != 1.0 || ls[0]["last_renewal_at"] == nil {
		t.Fatalf("inventory after the renewal: %+v", ls)
	}
	if v := gaugeValue(t, s.MetricsAddr(), "certmint_renewals_overdue"); v != 0 {
		t.Fatalf("certmint_renewals_overdue = %v after the renewal, want 0", v)
	}
}

// TestWebhookOnceAcrossReplicas: two replicas on one Postgres both run a
// dispatcher every 100 ms over the same outbox. With a receiver that
// fails at first, so the retries pile up for both to take, every event
// is acknowledged exactly once.
func TestWebhookOnceAcrossReplicas(t *testing.T) {
	const secret = "replica-secret-0123456789"
	rcv := startReceiver(t, secret)
	rcv.status.Store(http.StatusServiceUnavailable)
	dsn := pgtest.Start(t)
	args := []string{"--webhook-retry-base", "1s", "--webhook-poll", "100ms"}
	a := StartServer(t, ServerOptions{DB: dsn, Args: args})
	b := startReplica(t, a, dsn, args...)
	addWebhook(t, a, rcv.URL, secret, "certificate.issued")
	const certs = 6
	for i := range certs {
		obtainWithLego(t, a, fmt.Sprintf("r%d.replicas.fleet.test", i))
	}
	rcv.wait(t, 15*time.Second, "failed attempts", func(evs []hookEvent) bool { return len(evs) >= certs })
	rcv.status.Store(http.StatusOK)
	acked := func(evs []hookEvent) map[string]int {
		n := map[string]int{}
		for _, e := range evs {
			if e.Answered == http.StatusOK {
				n[e.ID]++
			}
		}
		return n
	}
	rcv.wait(t, 30*time.Second, "every event acknowledged", func(evs []hookEvent) bool { return len(acked(evs)) == certs })
	time.Sleep(2 * time.Second) // any second delivery would come now
	rcv.mu.Lock()
	got := acked(rcv.got)
	total := len(rcv.got)
	rcv.mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s acknowledged %d times, want 1", id, n)
		}
	}
	fa, fb := strings.Count(a.Output(), "webhook delivery failed"), strings.Count(b.Output(), "webhook delivery failed")
	t.Logf("%d events, %d posts in all; failed attempts by replica A %d, by replica B %d", len(got), total, fa, fb)
}
