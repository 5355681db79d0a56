package web

import "github.com/certmint/certmint/acme/workload"

// identity is the SPIFFE ID of a workload path (an EAB key's or an
// account's) in the server's trust domain, as certificates carry it; the
// bare path when the server has no trust domain, "" for none.
func (s *server) identity(path string) string {
	if path == "" {
		return ""
	}
	id, err := workload.ID(s.cfg.TrustDomain, path)
	if err != nil {
		return path
	}
	return id.String()
}
