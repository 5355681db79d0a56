package web

import (
	"net/http"
	"strings"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

var orderStatuses = []string{acme.StatusPending, acme.StatusReady, acme.StatusValid, acme.StatusInvalid}

// problem is the part of an RFC 8555 §6.7 problem document worth showing:
// the type without its URN prefix, the detail and the subproblems.
type problem struct {
	Type        string
	Detail      string
	Subproblems []problem
}

func problemView(p *acme.Problem) *problem {
	if p == nil {
		return nil
	}
	out := &problem{Type: strings.TrimPrefix(p.Type, acme.ProblemNS), Detail: p.Detail}
	for _, sp := range p.Subproblems {
		out.Subproblems = append(out.Subproblems, *problemView(sp))
	}
	return out
}

func (s *server) orders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := struct {
		Q, Status, Account string
		Statuses           []string
		Rows               []acme.Order
		Next               string
		First              bool
		DirectoryURL       string
	}{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Account: q.Get("account"), Statuses: orderStatuses,
		First: q.Get("after") == "", DirectoryURL: s.cfg.ACMEDirectoryURL}
	if d.Status != "" && !contains(orderStatuses, d.Status) {
		return errorf(http.StatusBadRequest, "Unknown status %q; use one of %s.", d.Status, strings.Join(orderStatuses, ", "))
	}
	list, err := s.store.ListOrders(r.Context(), storage.OrderFilter{Status: d.Status, AccountID: d.Account, Query: d.Q},
		storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	list, d.Next = onePage(list, func(x *acme.Order) string { return x.ID })
	d.Rows = list
	s.render(w, r, http.StatusOK, "orders", "Orders", "orders", d)
	return nil
}

func (s *server) order(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	o, err := s.store.GetOrder(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := struct {
		Order   *acme.Order
		Names   []string
		Problem *problem
		Authzs  []authzView
	}{Order: o, Names: o.Names, Problem: problemView(o.Error)}
	for _, id := range o.AuthzIDs {
		v, err := s.authzView(ctx, id)
		if err != nil {
			return err
		}
		d.Authzs = append(d.Authzs, v)
	}
	s.render(w, r, http.StatusOK, "order", "Order "+shortID(o.ID), "orders", d)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
