package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics fetches /metrics and parses all of it as the Prometheus
// text format; any line Prometheus would reject fails the test.
func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse with expfmt: %v\n%s", err, body)
	}
	return fams
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMetricsAfterIssuance is issue 17's metrics demonstration: after a
// lego issuance /metrics counts the certificate, has finalize's latency
// buckets, and parses as a whole. It also follows one request id from a
// client's error to the server's log line.
func TestMetricsAfterIssuance(t *testing.T) {
	s := StartServer(t, ServerOptions{Metrics: true, Args: []string{"--log-level", "info"}})
	metricsAddr := s.MetricsAddr()
	obtainWithLego(t, s, "metrics.example.test")

	fams := scrapeMetrics(t, metricsAddr)
	issued := 0.0
	if f := fams["certmint_certificates_issued_total"]; f != nil {
		for _, m := range f.Metric {
			issued += m.Counter.GetValue()
		}
	}
	if issued < 1 {
		t.Errorf("certmint_certificates_issued_total sums to %v after an issuance, want >= 1", issued)
	}
	var finalize *dto.Histogram
	endpoints := map[string]bool{}
	for _, m := range fams["certmint_acme_request_duration_seconds"].GetMetric() {
		endpoints[label(m, "endpoint")] = true
		if label(m, "endpoint") == "/acme/order/:id/finalize" {
			finalize = m.Histogram
		}
	}
	if finalize == nil || finalize.GetSampleCount() < 1 || len(finalize.Bucket) < 5 {
		t.Errorf("no finalize histogram with buckets; endpoints seen: %v", endpoints)
	} else {
		t.Logf("finalize: %d request(s), %.1f ms in total, %d buckets", finalize.GetSampleCount(), finalize.GetSampleSum()*1000, len(finalize.Bucket))
	}
	for ep := range endpoints {
		// Route templates only: a raw path (with an order id) would make
		// one series per order.
		if strings.Count(ep, "/") > 1 && !strings.Contains(ep, ":id") && !strings.HasPrefix(ep, "/acme/new-") &&
			ep != "/acme/directory" && ep != "/acme/key-change" && ep != "/acme/revoke-cert" {
			t.Errorf("endpoint label %q is not a route template", ep)
		}
	}
	valid := 0.0
	for _, m := range fams["certmint_validations_total"].GetMetric() {
		if label(m, "type") == "http-01" && label(m, "result") == "valid" {
			valid = m.Counter.GetValue()
		}
	}
	if valid < 1 {
		t.Errorf("certmint_validations_total{type=http-01,result=valid} = %v, want >= 1", valid)
	}
	for _, name := range []string{"certmint_validation_duration_seconds", "certmint_ca_certificate_expiry_timestamp_seconds",
		"certmint_crl_next_update_timestamp_seconds", "certmint_build_info", "go_sql_open_connections", "go_goroutines", "certmint_acme_requests_total"} {
		if fams[name] == nil {
			t.Errorf("%s is missing from /metrics", name)
		}
	}

	// A request id goes from the response header to the problem document
	// and the server's log line.
	resp, err := s.HTTPClient().Get(fmt.Sprintf("https://127.0.0.1:%d/acme/new-order", s.Port))
	if err != nil {
		t.Fatal(err)
	}
	var prob struct{ Type, Detail, Instance string }
	_ = json.NewDecoder(resp.Body).Decode(&prob)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" || prob.Instance != "urn:certmint:request:"+id || !strings.Contains(prob.Detail, id) {
		t.Fatalf("X-Request-Id %q, problem %+v: want the id as the instance and in the detail", id, prob)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(s.Output(), "request_id="+id) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var line string
	for _, l := range strings.Split(s.Output(), "\n") {
		if strings.Contains(l, "request_id="+id) {
			line = l
		}
	}
	if !strings.Contains(line, "status=405") || !strings.Contains(line, "path=/acme/new-order") {
		t.Fatalf("no log line with request_id=%s, status and path:\n%s", id, s.Output())
	}
	t.Logf("log line: %s", line)
	var requests float64
	for _, m := range scrapeMetrics(t, metricsAddr)["certmint_acme_requests_total"].GetMetric() {
		if label(m, "endpoint") == "/acme/new-order" && label(m, "code") == "405" && label(m, "problem") == "malformed" {
			requests = m.Counter.GetValue()
		}
	}
	if requests != 1 {
		t.Errorf("certmint_acme_requests_total{endpoint=/acme/new-order,code=405,problem=malformed} = %v, want 1", requests)
	}
}

// readyz returns /readyz's status and JSON body.
func readyz(hc *http.Client, s *Server) (int, map[string]string, error) {
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", s.Port))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("/readyz body: %w", err)
	}
	return resp.StatusCode, body, nil
}

// waitReadyz polls /readyz until it answers want, and returns how long
// that took, or fails after limit.
func waitReadyz(t *testing.T, s *Server, want int, limit time.Duration) (time.Duration, map[string]string) {
	t.Helper()
	hc := s.HTTPClient()
	hc.Timeout = 3 * time.Second
	start := time.Now()
	var last string
	for time.Since(start) < limit {
		code, body, err := readyz(hc, s)
		if err == nil && code == want {
			return time.Since(start), body
		}
		last = fmt.Sprintf("%d %v %v", code, body, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz did not answer %d within %s; last: %s\n%s", want, limit, last, s.Output())
	return 0, nil
}

// TestReadinessPostgres is issue 17's readiness demonstration: /readyz
// follows Postgres going away and coming back, with no certmint restart,
// while /healthz stays 200 throughout.
func TestReadinessPostgres(t *testing.T) {
	pg, dsn := ownCluster(t)
	s := StartServer(t, ServerOptions{DB: dsn})
	pid := s.pid()
	waitReadyz(t, s, http.StatusOK, 5*time.Second)

	stopping := time.Now()
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	took, body := waitReadyz(t, s, http.StatusServiceUnavailable, 5*time.Second-time.Since(stopping))
	t.Logf("/readyz 503 %v, %s after Postgres stopped (%s after the stop began)", body, took.Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
	if !strings.Contains(body["reason"], "database") {
		t.Errorf("the 503's reason %q does not name the database", body["reason"])
	}
	if resp, err := s.HTTPClient().Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", s.Port)); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz while Postgres is down: %v %v, want 200 (the process still serves)", resp, err)
	} else {
		resp.Body.Close()
	}

	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	took, _ = waitReadyz(t, s, http.StatusOK, 20*time.Second)
	t.Logf("/readyz 200 again %s after Postgres started", took.Round(time.Millisecond))
	if s.pid() != pid {
		t.Fatalf("certmint was restarted (pid %d, now %d)", pid, s.pid())
	}
}
