package crl

import (
	"bytes"
	"net/http"
	"strconv"
)

// URL paths that Handler serves. The CRL distribution point put in
// certificates is http://HOST:PORT + DERPath.
const (
	DERPath = "/crl/intermediate.crl"
	PEMPath = "/crl/intermediate.pem"
)

// Handler serves the current CRL over plain HTTP, as RFC 5280 §4.2.1.13
// distribution points are usually fetched: DER at DERPath
// (application/pkix-crl, RFC 2585 §4.2) and PEM at PEMPath. Plain HTTP is
// right here: the list is signed, and TLS would need a revocation check of
// its own. Responses carry an ETag (the CRL number) and ask caches to
// revalidate, so a revocation is visible at once and an unchanged list
// costs a 304.
func (p *Publisher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DERPath, func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, "application/pkix-crl", func(c *published) []byte { return c.der })
	})
	mux.HandleFunc("GET "+PEMPath, func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, "application/x-pem-file", func(c *published) []byte { return c.pem })
	})
	return mux
}

func (p *Publisher) serve(w http.ResponseWriter, r *http.Request, contentType string, body func(*published) []byte) {
	cur := p.current()
	if cur == nil {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "CRL not published yet", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, no-cache")
	h.Set("ETag", `"`+strconv.FormatInt(cur.number, 10)+`"`)
	http.ServeContent(w, r, "", cur.thisUpdate, bytes.NewReader(body(cur)))
}
