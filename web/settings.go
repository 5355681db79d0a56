package web

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

func (s *server) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := struct {
		Q     string
		Rows  []audit.Event
		Next  string
		First bool
	}{Q: strings.TrimSpace(q.Get("q")), First: q.Get("after") == ""}
	list, err := s.store.ListAuditEvents(r.Context(), d.Q, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	list, d.Next = onePage(list, func(x *audit.Event) string { return x.ID })
	d.Rows = list
	s.render(w, r, http.StatusOK, "audit", "Audit log", "audit", d)
	return nil
}

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
	users, err := s.store.ListAdminUsers(r.Context())
	if err != nil {
		return err
	}
	d := struct {
		Settings []Setting
		CAs      []caCertView
		Version  string
		Users    []storage.AdminUser
	}{Settings: s.cfg.Settings, Version: s.cfg.Version, Users: users,
		CAs: []caCertView{caView("Root", s.cfg.CA.Root()), caView("Intermediate (issuing)", s.cfg.CA.Intermediate())}}
	s.render(w, r, http.StatusOK, "settings", "Settings", "settings", d)
	return nil
}
