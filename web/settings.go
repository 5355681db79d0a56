package web

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"time"
)

type caCertView struct {
	Role, Subject, Issuer, KeyAlg, SHA256 string
	NotBefore, NotAfter                   time.Time
}

func caView(role string, c *x509.Certificate) caCertView {
	sum := sha256.Sum256(c.Raw)
	return caCertView{Role: role, Subject: c.Subject.String(), Issuer: c.Issuer.String(), KeyAlg: keyDescription(c),
		SHA256: colonHex(hex.EncodeToString(sum[:])), NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

func (s *server) settings(w http.ResponseWriter, r *http.Request) error {
	d := struct {
		Settings []Setting
		CAs      []caCertView
		Version  string
	}{Settings: s.cfg.Settings, Version: s.cfg.Version,
		CAs: []caCertView{caView("Root", s.cfg.CA.Root()), caView("Intermediate (issuing)", s.cfg.CA.Intermediate())}}
	s.render(w, r, http.StatusOK, "settings", "Settings", "settings", d)
	return nil
}
