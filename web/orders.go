package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/certmint/certmint/storage"
)

var orderStatuses = []string{storage.StatusPending, storage.StatusReady, storage.StatusProcessing, storage.StatusValid, storage.StatusInvalid}

// problem is the part of an RFC 8555 §6.7 problem document worth showing.
type problem struct {
	Type        string    `json:"type"`
	Detail      string    `json:"detail"`
	Subproblems []problem `json:"subproblems"`
}

func parseProblem(js string) *problem {
	if js == "" {
		return nil
	}
	var p problem
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		return &problem{Detail: js}
	}
	p.Type = strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
	for i := range p.Subproblems {
		p.Subproblems[i].Type = strings.TrimPrefix(p.Subproblems[i].Type, "urn:ietf:params:acme:error:")
	}
	return &p
}

func (s *server) orders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := struct {
		Q, Status, Account string
		Statuses           []string
		Rows               []storage.Order
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
	list, d.Next = onePage(list, func(x *storage.Order) string { return x.ID })
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
		Order   *storage.Order
		Names   []string
		Problem *problem
		Authzs  []authzView
	}{Order: o, Names: splitNames(o.Names), Problem: parseProblem(o.Error)}
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
