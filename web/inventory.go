package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/certmint/certmint/storage"
)

type inventoryData struct {
	State, Name string
	States      []string
	Rows        []storage.Lineage
	Count       int64
	Next        string
	First       bool
}

// inventory is /inventory: one row per certificate lineage (a service's
// certificate and the ones that renewed it), with its renewal state,
// filtered by state and name or workload identity, keyset-paged. The states are indexed
// ranges kept by the store as certificates are issued, so the page costs
// the same with a million certificates as with ten (BENCHMARKS.md).
func (s *server) inventory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := inventoryData{State: q.Get("state"), Name: strings.TrimSpace(q.Get("name")), States: storage.LineageStates,
		First: q.Get("after") == ""}
	if d.State != "" && !slices.Contains(storage.LineageStates, d.State) {
		return errorf(http.StatusBadRequest, "Unknown state %q; choose one of %s.", d.State, strings.Join(storage.LineageStates, ", "))
	}
	f := storage.LineageFilter{State: d.State, Pattern: d.Name, Now: s.now().UTC()}
	list, err := s.store.ListLineages(r.Context(), f, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	d.Rows, d.Next = onePage(list, func(l *storage.Lineage) string { return l.ID })
	// Counted only when filtered: the whole fleet's count is on the
	// dashboard, and an unfiltered count is the one that grows.
	if d.State != "" || d.Name != "" {
		if d.Count, err = s.store.CountLineages(r.Context(), f); err != nil {
			return err
		}
	}
	s.render(w, r, http.StatusOK, "inventory", "Inventory", "inventory", d)
	return nil
}
