// Package metrics holds certmint serve's Prometheus registry and its
// collectors: ACME requests and validations counted in this process, and
// certificate, CA and CRL figures read when scraped. It implements
// acme.Observer, so the ACME package itself never sees Prometheus.
//
// Two kinds of numbers live here, and each metric's help text says which:
// "per replica" ones count what this process did (sum them over
// replicas); "from the database" ones are the same on every replica that
// shares the database (take any one, or max, never the sum).
package metrics

import (
	"crypto/x509"
	"database/sql"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CACertificate is one certificate of the CA and its role ("root",
// "intermediate").
type CACertificate struct {
	Role string
	Cert *x509.Certificate
}

// Sources is where the scrape-time collectors read from. Nil fields leave
// their metrics out.
type Sources struct {
	// Certificates counts issued and revoked certificates in the database.
	Certificates CertificateCounter
	// Overdue counts the lineages overdue for renewal in the database.
	Overdue OverdueCounter
	// Profiles are the configured profile names: each is reported from
	// the start, at 0 until its first certificate, so rate() sees the
	// first one too.
	Profiles []string
	// CountEvery is the shortest time between two counts of the database
	// (default 15 s): a scrape storm must not become a query storm.
	CountEvery time.Duration
	// Pools are the database's connection pools by name (sql.DBStats).
	Pools map[string]*sql.DB
	// CACertificates returns the CA's current certificates.
	CACertificates func() []CACertificate
	// CRLIssuer names the CA that signs the CRL; CRLNextUpdate returns the
	// served CRL's nextUpdate, false before the first one.
	CRLIssuer     string
	CRLNextUpdate func() (time.Time, bool)
	// Version is certmint's version, for certmint_build_info.
	Version string
	Logger  *slog.Logger
}

// Metrics is the registry of one certmint serve process.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	requestDur  *prometheus.HistogramVec
	validations *prometheus.CounterVec
	validateDur *prometheus.HistogramVec
}

// New registers every collector. It panics only on a programming error
// (two metrics of one name), as prometheus.MustRegister does.
func New(src Sources) *Metrics {
	if src.Logger == nil {
		src.Logger = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certmint_acme_requests_total",
			Help: "ACME requests answered, per replica, by route template, HTTP status and RFC 8555 problem type (empty on success).",
		}, []string{"endpoint", "code", "problem"}),
		requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "certmint_acme_request_duration_seconds",
			Help:    "Time to answer an ACME request, per replica, by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certmint_validations_total",
			Help: "Challenge validations run, per replica, by challenge type and result (valid, invalid).",
		}, []string{"type", "result"}),
		validateDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "certmint_validation_duration_seconds",
			Help:    "Time one challenge validation took (the check, not the database write), per replica, by challenge type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
	}
	m.reg.MustRegister(m.requests, m.requestDur, m.validations, m.validateDur,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(src.Version))
	if src.Certificates != nil {
		m.reg.MustRegister(newCertCollector(src.Certificates, src.Profiles, src.CountEvery, src.Logger))
	}
	if src.Overdue != nil {
		m.reg.MustRegister(&overdueCollector{src: src.Overdue, log: src.Logger})
	}
	for name, db := range src.Pools {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
	if src.CACertificates != nil || src.CRLNextUpdate != nil {
		m.reg.MustRegister(&caCollector{src: src})
	}
	return m
}

// ObserveRequest implements acme.Observer.
func (m *Metrics) ObserveRequest(endpoint string, code int, problem string, took time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code), problem).Inc()
	m.requestDur.WithLabelValues(endpoint).Observe(took.Seconds())
}

// ObserveValidation implements acme.Observer.
func (m *Metrics) ObserveValidation(challengeType, result string, took time.Duration) {
	m.validations.WithLabelValues(challengeType, result).Inc()
	m.validateDur.WithLabelValues(challengeType).Observe(took.Seconds())
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// buildInfo is certmint_build_info: always 1, the labels carry the facts.
func buildInfo(version string) prometheus.Collector {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "certmint_build_info",
		Help:        "certmint's version, VCS revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
