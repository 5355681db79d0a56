package web

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// highVolume are the actions /audit hides unless asked (all=1): one
// issuance each, they would bury everything a person did.
var highVolume = []string{audit.CertIssue}

// maxExport bounds one CSV or JSON export.
const maxExport = 100_000

// auditQuery is the filter of /audit and /audit/export, read from the
// query string so that a filtered view can be linked.
type auditQuery struct {
	Q, Actor, Action, Target, From, To string
	All                                bool // show high-volume actions
	Error                              string
}

func parseAuditQuery(q url.Values) (auditQuery, storage.AuditFilter) {
	a := auditQuery{Q: strings.TrimSpace(q.Get("q")), Actor: strings.TrimSpace(q.Get("actor")),
		Action: strings.TrimSpace(q.Get("action")), Target: strings.TrimSpace(q.Get("target")),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), All: q.Get("all") == "1"}
	f := storage.AuditFilter{Q: a.Q, Actor: a.Actor, Action: a.Action, Target: a.Target}
	var err error
	if f.From, err = parseWhen(a.From, false); err != nil {
		a.Error = "From: " + err.Error()
	}
	if f.To, err = parseWhen(a.To, true); err != nil {
		a.Error = "To: " + err.Error()
	}
	if !a.All && a.Action == "" {
		f.HideActions = highVolume
	}
	return a, f
}

// parseWhen reads a date (2006-01-02, UTC; as an upper bound the whole
// day counts), a datetime-local value or RFC 3339.
func parseWhen(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2006-01-02) or time (2006-01-02T15:04, UTC)", s)
}

// link is the query string of the filter plus extra pairs.
func (a auditQuery) link(extra ...string) string {
	all := ""
	if a.All {
		all = "1"
	}
	return queryString(append([]string{"q", a.Q, "actor", a.Actor, "action", a.Action, "target", a.Target,
		"from", a.From, "to", a.To, "all", all}, extra...)...)
}

func (s *server) auditPage(w http.ResponseWriter, r *http.Request) error {
	a, f := parseAuditQuery(r.URL.Query())
	d := struct {
		F          auditQuery
		Rows       []audit.Event
		Next       string
		First      bool
		Total      int64
		Hidden     int64 // high-volume events the filter leaves out
		Link       func(extra ...string) string
		HighVolume string
		Chain      chainStatus
	}{F: a, First: r.URL.Query().Get("after") == "", Link: a.link, HighVolume: strings.Join(highVolume, ", ")}
	var err error
	if d.Chain, err = s.auditChain(r.Context()); err != nil {
		return err
	}
	status := http.StatusOK
	if a.Error == "" {
		list, err := s.store.FindAuditEvents(r.Context(), f, storage.Page{After: r.URL.Query().Get("after"), Limit: pageSize + 1})
		if err != nil {
			return err
		}
		d.Rows, d.Next = onePage(list, func(x *audit.Event) string { return x.ID })
		if d.Total, err = s.store.CountAuditEvents(r.Context(), f); err != nil {
			return err
		}
		if len(f.HideActions) > 0 {
			f.HideActions = nil
			all, err := s.store.CountAuditEvents(r.Context(), f)
			if err != nil {
				return err
			}
			d.Hidden = all - d.Total
		}
	} else {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, "audit", "Audit log", "audit", d)
	return nil
}

// auditExport downloads the filtered set, newest first, as CSV or JSON.
func (s *server) auditExport(w http.ResponseWriter, r *http.Request) error {
	a, f := parseAuditQuery(r.URL.Query())
	if a.Error != "" {
		return errorf(http.StatusBadRequest, "%s", a.Error)
	}
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		return errorf(http.StatusBadRequest, "Export as format=csv or format=json.")
	}
	var rows []audit.Event
	after := ""
	for len(rows) < maxExport {
		list, err := s.store.FindAuditEvents(r.Context(), f, storage.Page{After: after, Limit: 1000})
		if err != nil {
			return err
		}
		rows = append(rows, list...)
		if len(list) < 1000 {
			break
		}
		after = list[len(list)-1].ID
	}
	name := "certmint-audit-" + s.now().UTC().Format("20060102-150405") + "." + format
	h := w.Header()
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	if format == "json" {
		type row struct {
			ID         string    `json:"id"`
			At         time.Time `json:"at"`
			Actor      string    `json:"actor"`
			Action     string    `json:"action"`
			Target     string    `json:"target"`
			Detail     string    `json:"detail"`
			RemoteAddr string    `json:"remote_addr"`
		}
		out := make([]row, len(rows))
		for i, e := range rows {
			out[i] = row{e.ID, e.At, e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr}
		}
		h.Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(out)
	}
	h.Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "at", "actor", "action", "target", "detail", "remote_addr"})
	for _, e := range rows {
		_ = cw.Write([]string{e.ID, e.At.UTC().Format(time.RFC3339), csvSafe(e.Actor), csvSafe(e.Action),
			csvSafe(e.Target), csvSafe(e.Detail), csvSafe(e.RemoteAddr)})
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses values a spreadsheet would run as a formula (an actor
// or detail is partly user input).
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
