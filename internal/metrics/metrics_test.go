package metrics

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fakeCounts answers CertificateCounts from fields and counts the calls.
type fakeCounts struct {
	calls   atomic.Int32
	took    time.Duration
	fail    atomic.Bool
	issued  map[string]int64
	revoked map[int]int64
}

func (f *fakeCounts) CertificateCounts(context.Context) (map[string]int64, map[int]int64, error) {
	f.calls.Add(1)
	time.Sleep(f.took)
	if f.fail.Load() {
		return nil, nil, errors.New("database down")
	}
	issued := map[string]int64{}
	for k, v := range f.issued {
		issued[k] = v
	}
	return issued, f.revoked, nil
}

func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value is the metric of fam whose labels include want, or -1.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
next:
	for _, m := range fam.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	counts := &fakeCounts{issued: map[string]int64{"default": 3}, revoked: map[int]int64{1: 2}}
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	next := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	inter := &x509.Certificate{Subject: pkix.Name{CommonName: "Test Intermediate"}, NotAfter: expiry}
	m := New(Sources{
		Certificates: counts, Profiles: []string{"default", "short"}, CountEvery: time.Hour,
		CACertificates: func() []CACertificate { return []CACertificate{{Role: "intermediate", Cert: inter}} },
		CRLIssuer:      "Test Intermediate", CRLNextUpdate: func() (time.Time, bool) { return next, true },
		Version: "v9.9.9", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	m.ObserveRequest("/acme/order/:id/finalize", 200, "", 30*time.Millisecond)
	m.ObserveRequest("/acme/new-order", 400, "rejectedIdentifier", time.Millisecond)
	m.ObserveValidation("http-01", "valid", 5*time.Millisecond)
	m.ObserveValidation("dns-01", "invalid", time.Second)

	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"certmint_certificates_issued_total", map[string]string{"profile": "default"}, 3},
		{"certmint_certificates_issued_total", map[string]string{"profile": "short"}, 0},
		{"certmint_certificates_revoked_total", map[string]string{"reason": "keyCompromise"}, 2},
		{"certmint_acme_requests_total", map[string]string{"endpoint": "/acme/new-order", "code": "400", "problem": "rejectedIdentifier"}, 1},
		{"certmint_acme_request_duration_seconds", map[string]string{"endpoint": "/acme/order/:id/finalize"}, 1},
		{"certmint_validations_total", map[string]string{"type": "dns-01", "result": "invalid"}, 1},
		{"certmint_validation_duration_seconds", map[string]string{"type": "http-01"}, 1},
		{"certmint_ca_certificate_expiry_timestamp_seconds", map[string]string{"issuer": "Test Intermediate", "role": "intermediate"}, float64(expiry.Unix())},
		{"certmint_crl_next_update_timestamp_seconds", map[string]string{"issuer": "Test Intermediate"}, float64(next.Unix())},
		{"certmint_build_info", map[string]string{"version": "v9.9.9"}, 1},
	} {
		if got := value(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("the Go runtime collector is missing")
	}

	// Within CountEvery the database is not asked again.
	counts.issued["default"] = 4
	scrape(t, m)
	if n := counts.calls.Load(); n != 1 {
		t.Errorf("two scrapes within CountEvery counted the database %d times, want 1", n)
	}
}

func TestCountsLeftOutWhenDatabaseFails(t *testing.T) {
	counts := &fakeCounts{issued: map[string]int64{"default": 3}}
	counts.fail.Store(true)
	m := New(Sources{Certificates: counts, CountEvery: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if fams := scrape(t, m); fams["certmint_certificates_issued_total"] != nil {
		t.Fatal("issued_total reported while the database failed; it must be left out, not stale or zero")
	}
	counts.fail.Store(false)
	// The failed count spaces the next one by countSpacing times what it
	// took (microseconds here, milliseconds on a loaded machine), so
	// recovery shows within a few scrapes, not necessarily the next one.
	got, deadline := -1.0, time.Now().Add(2*time.Second)
	for got != 3 && time.Now().Before(deadline) {
		got = value(scrape(t, m), "certmint_certificates_issued_total", map[string]string{"profile": "default"})
		if got != 3 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got != 3 {
		t.Fatalf("2 s after recovery issued_total = %v, want 3", got)
	}
}

// TestSlowCountsSpacedOut: a count that takes long is not repeated at
// every scrape, however short CountEvery is.
func TestSlowCountsSpacedOut(t *testing.T) {
	counts := &fakeCounts{issued: map[string]int64{"default": 1}, took: 20 * time.Millisecond}
	m := New(Sources{Certificates: counts, CountEvery: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	scrape(t, m)
	scrape(t, m)
	if n := counts.calls.Load(); n != 1 {
		t.Fatalf("a 20 ms count ran %d times in two quick scrapes, want 1", n)
	}
}

// BenchmarkObserveRequest is the cost every ACME request pays for its
// metrics.
func BenchmarkObserveRequest(b *testing.B) {
	m := New(Sources{})
	for b.Loop() {
		m.ObserveRequest("/acme/order/:id/finalize", 200, "", 3*time.Millisecond)
	}
}
