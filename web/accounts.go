package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

type accountRow struct {
	acme.Account
	Contacts []string
	Identity string // the SPIFFE ID of its workload, "" for none
}

// contacts shows an account's contact URIs as plain addresses.
func contacts(uris []string) []string {
	out := make([]string, len(uris))
	for i, c := range uris {
		out[i] = strings.TrimPrefix(c, "mailto:")
	}
	return out
}

func (s *server) accounts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := struct {
		Q            string
		Rows         []accountRow
		Next         string
		First        bool
		DirectoryURL string
	}{Q: strings.TrimSpace(q.Get("q")), First: q.Get("after") == "", DirectoryURL: s.cfg.ACMEDirectoryURL}
	list, err := s.store.ListAccounts(r.Context(), d.Q, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	list, d.Next = onePage(list, func(x *acme.Account) string { return x.ID })
	for _, a := range list {
		d.Rows = append(d.Rows, accountRow{Account: a, Contacts: contacts(a.Contact), Identity: s.identity(a.Workload)})
	}
	s.render(w, r, http.StatusOK, "accounts", "Accounts", "accounts", d)
	return nil
}

type accountDetail struct {
	Account  accountRow
	Orders   []acme.Order
	Certs    []certRow
	MoreOrd  bool
	MoreCert bool
}

const detailListSize = 20

func (s *server) loadAccount(r *http.Request) (*accountDetail, error) {
	ctx := r.Context()
	a, err := s.store.GetAccount(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &accountDetail{Account: accountRow{Account: *a, Contacts: contacts(a.Contact), Identity: s.identity(a.Workload)}}
	orders, err := s.store.ListOrders(ctx, storage.OrderFilter{AccountID: a.ID}, storage.Page{Limit: detailListSize + 1})
	if err != nil {
		return nil, err
	}
	if d.MoreOrd = len(orders) > detailListSize; d.MoreOrd {
		orders = orders[:detailListSize]
	}
	d.Orders = orders
	certs, err := s.store.ListCertificates(ctx, storage.CertFilter{AccountID: a.ID}, storage.Page{Limit: detailListSize + 1})
	if err != nil {
		return nil, err
	}
	if d.MoreCert = len(certs) > detailListSize; d.MoreCert {
		certs = certs[:detailListSize]
	}
	now := s.now()
	for i := range certs {
		d.Certs = append(d.Certs, certRow{Certificate: certs[i], State: certState(&certs[i], now), Names: certs[i].Names})
	}
	return d, nil
}

func (s *server) account(w http.ResponseWriter, r *http.Request) error {
	d, err := s.loadAccount(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "account", "Account "+shortID(d.Account.ID), "accounts", d)
	return nil
}

func (s *server) deactivateForm(w http.ResponseWriter, r *http.Request) error {
	d, err := s.loadAccount(r)
	if err != nil {
		return err
	}
	if d.Account.Status != acme.StatusValid {
		http.Redirect(w, r, "/accounts/"+d.Account.ID, http.StatusSeeOther)
		return nil
	}
	s.render(w, r, http.StatusOK, "deactivate", "Deactivate account", "accounts", d)
	return nil
}

// deactivate is RFC 8555 §7.3.6 done by the operator: the account can no
// longer be used; its certificates stay valid until revoked.
func (s *server) deactivate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := s.store.DeactivateAccount(r.Context(), id)
	if errors.Is(err, storage.ErrConflict) {
		return errorf(http.StatusConflict, "This account is not active any more.")
	}
	if err != nil {
		return err
	}
	s.log.Info("account deactivated from the console", "account", id, "user", sessionFrom(r.Context()).Username)
	s.audit(r, "", audit.AccountDeactivate, audit.Account(id), "")
	http.Redirect(w, r, "/accounts/"+id, http.StatusSeeOther)
	return nil
}
