package main

import (
	"crypto"
	"crypto/x509"
	"log/slog"
	"net/http"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/crl"
	"github.com/certmint/certmint/internal/health"
	"github.com/certmint/certmint/internal/metrics"
	"github.com/certmint/certmint/storage"
)

// newMetrics builds the process's registry. It exists even without
// --metrics-listen, since the ACME server reports to it either way; only
// serving it is optional.
func newMetrics(o serveOptions, store storage.Store, authority *ca.CA, pub *crl.Set, log *slog.Logger) *metrics.Metrics {
	profiles := make([]string, 0, len(o.Profiles))
	for name := range o.Profiles {
		profiles = append(profiles, name)
	}
	return metrics.New(metrics.Sources{
		Certificates: store,
		Overdue:      store,
		Profiles:     profiles,
		Pools:        store.SQLPools(),
		CACertificates: func() []metrics.CACertificate {
			return []metrics.CACertificate{{Role: "root", Cert: authority.Root()}, {Role: "intermediate", Cert: authority.Intermediate()}}
		},
		CRLIssuer:     authority.Intermediate().Subject.CommonName,
		CRLNextUpdate: pub.NextUpdate,
		Version:       version,
		Logger:        log,
	})
}

// withHealth puts /healthz and /readyz in front of the ACME handler. They
// bypass the ACME middleware on purpose: a load balancer's probe every
// two seconds needs no nonce, no request id and no log line.
func (a *app) withHealth(acmeHandler http.Handler) http.Handler {
	c := &health.Checker{
		DB: a.store,
		Issuer: func() (crypto.Signer, *x509.Certificate) {
			return a.ca.Signer(), a.ca.Intermediate()
		},
		Logger: a.log,
	}
	return c.Handler(acmeHandler)
}

// metricsServer serves /metrics on --metrics-listen over plain HTTP, as
// Prometheus scrapes by default.
func (a *app) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.metrics.Handler())
	return a.newHTTPServer(mux, nil)
}
