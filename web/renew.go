package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// "Renew now" moves the ACME Renewal Information window of the selected
// certificates into the past (RFC 9773 §4.2), so clients that poll
// renewalInfo (lego, certbot, Caddy, cert-manager, the agent) renew at
// their next check, without anyone logging into the services. Revocation
// would force the same but breaks the service until it renews; this does
// not.

// renewScope is what one confirmation page and its POST act on.
type renewScope struct {
	Kind    string // "certificate", "account" or "pattern"
	Action  string // the form's URL
	Back    string // where Cancel goes
	Label   string // what is selected, in words
	Pattern string
	Search  string // ?q= on /certificates that lists the pattern's certificates
	Count   int64  // after the POST: how many certificates were marked
}

func (s *server) certRenewForm(w http.ResponseWriter, r *http.Request) error {
	d, err := s.loadCert(r)
	if err != nil {
		return err
	}
	if d.State == "revoked" || d.State == "expired" || d.Cert.RenewNow {
		http.Redirect(w, r, "/certificates/"+d.Cert.ID, http.StatusSeeOther)
		return nil
	}
	s.renderRenew(w, r, http.StatusOK, renewScope{Kind: "certificate", Action: "/certificates/" + d.Cert.ID + "/renew",
		Back: "/certificates/" + d.Cert.ID, Label: fmt.Sprintf("%s (serial %s)", strings.Join(d.Names, ", "), d.Cert.Serial)})
	return nil
}

func (s *server) certRenew(w http.ResponseWriter, r *http.Request) error {
	c, err := s.store.GetCertificate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := s.store.SetRenewNow(r.Context(), storage.RenewFilter{CertificateID: c.ID})
	if err != nil {
		return err
	}
	if n == 0 {
		return errorf(http.StatusConflict, "This certificate is revoked or expired; there is nothing to renew.")
	}
	s.renewAudit(r, audit.Certificate(c.ID), fmt.Sprintf("serial %s (%s)", c.Serial, c.Names), n)
	http.Redirect(w, r, "/certificates/"+c.ID, http.StatusSeeOther)
	return nil
}

func (s *server) accountRenewForm(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.GetAccount(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.renderRenew(w, r, http.StatusOK, renewScope{Kind: "account", Action: "/accounts/" + a.ID + "/renew",
		Back: "/accounts/" + a.ID, Label: "every certificate of account " + a.ID})
	return nil
}

func (s *server) accountRenew(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.GetAccount(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := s.store.SetRenewNow(r.Context(), storage.RenewFilter{AccountID: a.ID})
	if err != nil {
		return err
	}
	s.renewAudit(r, audit.Account(a.ID), "every certificate of the account", n)
	s.renderRenew(w, r, http.StatusOK, renewScope{Kind: "account", Back: "/accounts/" + a.ID,
		Label: "every certificate of account " + a.ID, Count: n})
	return nil
}

// renewPattern reads ?pattern= (GET) or the form field (POST): one name,
// or "*.suffix" for every name under the suffix.
func renewPattern(r *http.Request) (string, error) {
	p := strings.ToLower(strings.TrimSpace(r.FormValue("pattern")))
	if p == "" {
		return "", errorf(http.StatusBadRequest, "Enter a name (api.example.internal) or a suffix (*.example.internal).")
	}
	rest, _ := strings.CutPrefix(p, "*.")
	if len(p) > 253 || rest == "" || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") {
		return "", errorf(http.StatusBadRequest, "%q is not a name or *.suffix.", p)
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return "", errorf(http.StatusBadRequest, "%q is not a name or *.suffix: only a leading *. may be a wildcard.", p)
		}
	}
	return p, nil
}

func patternLabel(p string) string {
	if suffix, ok := strings.CutPrefix(p, "*."); ok {
		return "every certificate with a name under " + suffix
	}
	return "every certificate for " + p
}

func (s *server) patternRenewForm(w http.ResponseWriter, r *http.Request) error {
	p, err := renewPattern(r)
	if err != nil {
		return err
	}
	s.renderRenew(w, r, http.StatusOK, renewScope{Kind: "pattern", Action: "/certificates/renew", Back: "/certificates",
		Label: patternLabel(p), Pattern: p})
	return nil
}

func (s *server) patternRenew(w http.ResponseWriter, r *http.Request) error {
	p, err := renewPattern(r)
	if err != nil {
		return err
	}
	n, err := s.store.SetRenewNow(r.Context(), storage.RenewFilter{NamePattern: p})
	if err != nil {
		return err
	}
	s.renewAudit(r, audit.Names(p), patternLabel(p), n)
	s.renderRenew(w, r, http.StatusOK, renewScope{Kind: "pattern", Back: "/certificates", Label: patternLabel(p), Pattern: p,
		Search: strings.TrimPrefix(p, "*"), Count: n})
	return nil
}

func (s *server) renewAudit(r *http.Request, target, what string, n int64) {
	s.log.Info("renewal requested from the console", "target", target, "certificates", n, "user", sessionFrom(r.Context()).Username)
	s.audit(r, "", audit.CertRenewNow, target, fmt.Sprintf("%s: %d certificate(s) marked", what, n))
}

// renderRenew shows the confirmation (Action set) or, after the POST, the
// result (Action empty).
func (s *server) renderRenew(w http.ResponseWriter, r *http.Request, status int, sc renewScope) {
	nav := "certificates"
	if sc.Kind == "account" {
		nav = "accounts"
	}
	title := "Renew now?"
	if sc.Action == "" {
		title = "Renewal requested"
	}
	s.render(w, r, status, "renew", title, nav, sc)
}
