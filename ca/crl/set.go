package crl

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/certmint/certmint/ca"
)

// IssuerStore is Store with each issuer's own revocations.
type IssuerStore interface {
	Store
	// ListRevokedBy is ListRevoked for the certificates issuer (hex SKI)
	// signed.
	ListRevokedBy(ctx context.Context, issuer string, notAfterSince time.Time) ([]Revoked, error)
}

// Set publishes one CRL per intermediate that answers for certificates:
// the active one and those retiring after a rotation (RFC 5280 §5: a CRL
// lists what its issuer revoked). Each is served at /crl/NAME.crl, NAME
// being the issuer's CRL name; the first intermediate keeps
// /crl/intermediate.crl, the URL its certificates carry. The set follows
// the CA's issuers as they change.
type Set struct {
	store  IssuerStore
	ca     *ca.CA
	opts   Options
	notify chan struct{}

	mu   sync.Mutex
	pubs map[string]*Publisher // by issuer ID
}

// NewSet returns a Set for authority's issuers; call Run.
func NewSet(store IssuerStore, authority *ca.CA, opts Options) *Set {
	return &Set{store: store, ca: authority, opts: opts.withDefaults(), notify: make(chan struct{}, 1), pubs: map[string]*Publisher{}}
}

// publishers brings the set in line with the CA's issuers.
func (s *Set) publishers() []*Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	var out []*Publisher
	for _, iss := range s.ca.CRLIssuers() {
		want[iss.ID] = true
		p := s.pubs[iss.ID]
		if p == nil {
			id := iss.ID
			if iss.Cert != nil {
				id = strings.ToLower(hexSKI(iss))
			}
			var err error
			p, err = newPublisher(s.store, iss, func(ctx context.Context, since time.Time) ([]Revoked, error) {
				return s.store.ListRevokedBy(ctx, id, since)
			}, s.opts)
			if err != nil {
				s.opts.Logger.Error("cannot publish an issuer's CRL", "issuer", iss.ID, "err", err)
				continue
			}
			s.pubs[iss.ID] = p
		}
		out = append(out, p)
	}
	for id := range s.pubs {
		if !want[id] {
			delete(s.pubs, id)
		}
	}
	return out
}

// Notify asks Run to re-sign the lists now (after Debounce). It never
// blocks.
func (s *Set) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Run keeps every list current until ctx is done, as Publisher.Run does
// for one.
func (s *Set) Run(ctx context.Context) {
	runLoop(ctx, s.opts, s.notify, s.RefreshAll)
}

// RefreshAll refreshes every issuer's list once.
func (s *Set) RefreshAll(ctx context.Context) {
	for _, p := range s.publishers() {
		p.refreshLogged(ctx)
	}
}

// find returns the publisher serving CRL name.
func (s *Set) find(name string) *Publisher {
	for _, p := range s.publishers() {
		if p.iss.CRLName == name || p.iss.ID == name {
			return p
		}
	}
	return nil
}

// NextUpdate is the active issuer's CRL nextUpdate, for monitoring.
func (s *Set) NextUpdate() (time.Time, bool) {
	if a := s.ca.Active(); a != nil {
		if p := s.find(a.CRLName); p != nil {
			return p.NextUpdate()
		}
	}
	return time.Time{}, false
}

// Handler serves /crl/NAME.crl (DER) and /crl/NAME.pem for every issuer
// of the set; see Publisher.Handler for the caching rules.
func (s *Set) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crl/{file}", func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		name, ext := file, ""
		if i := strings.LastIndex(file, "."); i > 0 {
			name, ext = file[:i], file[i:]
		}
		p := s.find(name)
		if p == nil || (ext != ".crl" && ext != ".pem") {
			http.NotFound(w, r)
			return
		}
		if ext == ".pem" {
			p.serve(w, r, "application/x-pem-file", func(c *published) []byte { return c.pem })
			return
		}
		p.serve(w, r, "application/pkix-crl", func(c *published) []byte { return c.der })
	})
	return mux
}

func hexSKI(iss *ca.Issuer) string { return hex.EncodeToString(iss.Cert.SubjectKeyId) }
