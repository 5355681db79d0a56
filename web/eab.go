package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/workload"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// eabAccountsShown caps the accounts listed per key; a reusable team key
// may bind many, and the list page stays one query per key.
const eabAccountsShown = 5

type eabRow struct {
	eab.Key
	AllowList []string
	Identity  string // the SPIFFE ID its accounts are, "" for none
	Accounts  []acme.Account
	More      bool // more accounts than shown
}

type eabForm struct {
	Label    string
	Allow    string
	Reusable bool
	Workload string
	Error    string // about the allow list (or the whole form)
	// WorkloadError is shown next to the workload field.
	WorkloadError string
}

type eabListData struct {
	Q            string // search: key ID, label or workload identity
	Rows         []eabRow
	Next         string
	First        bool
	Form         eabForm
	DirectoryURL string
	TrustDomain  string // "" when the server has none
}

func (s *server) eabRow(ctx context.Context, k eab.Key) (eabRow, error) {
	k.HMACKey = nil // nothing secret reaches a template
	row := eabRow{Key: k, AllowList: k.Allow, Identity: s.identity(k.Workload)}
	accts, err := s.store.ListAccountsByEABKey(ctx, k.ID, eabAccountsShown+1)
	if err != nil {
		return row, err
	}
	if row.More = len(accts) > eabAccountsShown; row.More {
		accts = accts[:eabAccountsShown]
	}
	row.Accounts = accts
	return row, nil
}

// eabKeys is /eab: every external account binding key with the accounts
// that bound with it, and the form to create one.
func (s *server) eabKeys(w http.ResponseWriter, r *http.Request) error {
	return s.renderEABList(w, r, http.StatusOK, eabForm{})
}

func (s *server) renderEABList(w http.ResponseWriter, r *http.Request, status int, form eabForm) error {
	q := r.URL.Query()
	d := eabListData{Q: strings.TrimSpace(q.Get("q")), First: q.Get("after") == "", Form: form, DirectoryURL: s.cfg.ACMEDirectoryURL,
		TrustDomain: s.cfg.TrustDomain.Name()}
	keys, err := s.store.ListEABKeys(r.Context(), d.Q, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	keys, d.Next = onePage(keys, func(x *eab.Key) string { return x.ID })
	for _, k := range keys {
		row, err := s.eabRow(r.Context(), k)
		if err != nil {
			return err
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, r, status, "eab", "External account binding", "eab", d)
	return nil
}

// eabCreate makes a key and shows its HMAC in this one response (no
// redirect, so the secret never lands in a URL, a log line or the
// browser history); the store keeps it for verification only and no
// page shows it again (RFC 8555 §7.3.4).
func (s *server) eabCreate(w http.ResponseWriter, r *http.Request) error {
	form := eabForm{
		Label:    strings.TrimSpace(r.PostForm.Get("label")),
		Allow:    r.PostForm.Get("allow"),
		Reusable: r.PostForm.Get("reusable") != "",
		Workload: strings.TrimSpace(r.PostForm.Get("workload")),
	}
	var allow []string
	for _, line := range strings.Split(form.Allow, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			allow = append(allow, line)
		}
	}
	if len(form.Label) > 255 {
		form.Error = "The label is too long; keep it under 255 characters."
		return s.renderEABList(w, r, http.StatusBadRequest, form)
	}
	key, mac, err := eab.NewKey(eab.Spec{Label: form.Label, Allow: allow, Reusable: form.Reusable, Workload: form.Workload})
	var fe *eab.FieldError
	switch {
	case errors.As(err, &fe) && fe.Field == "workload":
		form.WorkloadError = "Workload identity: " + fe.Err.Error() + "."
		return s.renderEABList(w, r, http.StatusBadRequest, form)
	case errors.As(err, &fe):
		form.Error = "Allowed names: " + fe.Err.Error()
		return s.renderEABList(w, r, http.StatusBadRequest, form)
	case err != nil:
		return err
	}
	if key.Workload != "" {
		// The key is refused here rather than at issuance: without a
		// trust domain, or with an ID over 2048 bytes, it could never
		// issue (package workload).
		if _, err := workload.ID(s.cfg.TrustDomain, key.Workload); err != nil {
			form.WorkloadError = "Workload identity: " + err.Error() + "."
			return s.renderEABList(w, r, http.StatusBadRequest, form)
		}
	}
	if err := s.store.CreateEABKey(r.Context(), key); err != nil {
		return fmt.Errorf("create EAB key: %w", err)
	}
	detail := "label " + quoteOrNone(key.Label)
	if len(allow) > 0 {
		detail += ", allow " + strings.Join(key.Allow, " ")
	}
	if key.Reusable {
		detail += ", reusable"
	}
	if key.Workload != "" {
		detail += ", workload " + key.Workload
	}
	s.log.Info("EAB key created from the console", "kid", key.ID, "user", sessionFrom(r.Context()).Username)
	s.audit(r, "", audit.EABCreate, audit.EABKey(key.ID), detail)
	s.render(w, r, http.StatusOK, "eab-created", "Key created", "eab", struct {
		Key          *eab.Key
		AllowList    []string
		Identity     string
		HMAC         string
		DirectoryURL string
	}{key, key.Allow, s.identity(key.Workload), mac, s.cfg.ACMEDirectoryURL})
	return nil
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func (s *server) eabRevokeForm(w http.ResponseWriter, r *http.Request) error {
	k, err := s.store.GetEABKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if k.Revoked {
		http.Redirect(w, r, "/eab", http.StatusSeeOther)
		return nil
	}
	row, err := s.eabRow(r.Context(), *k)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "eab-revoke", "Revoke key", "eab", row)
	return nil
}

// eabRevoke stops new accounts from binding with the key; accounts bound
// already keep working (deactivate them on their pages to stop them),
// except that accounts of a workload key get no new certificate: the
// identity was the key's to give (acme.Server.workloadID).
func (s *server) eabRevoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	k, err := s.store.GetEABKey(r.Context(), id)
	if err != nil {
		return err
	}
	err = s.store.RevokeEABKey(r.Context(), k.ID)
	if errors.Is(err, storage.ErrConflict) {
		return errorf(http.StatusConflict, "This key was revoked already.")
	}
	if err != nil {
		return err
	}
	s.log.Info("EAB key revoked from the console", "kid", k.ID, "user", sessionFrom(r.Context()).Username)
	s.audit(r, "", audit.EABRevoke, audit.EABKey(k.ID), "label "+quoteOrNone(k.Label))
	http.Redirect(w, r, "/eab", http.StatusSeeOther)
	return nil
}
