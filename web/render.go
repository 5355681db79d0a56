package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

// handlerFunc is a page handler: it writes a response or returns an error
// that handle turns into an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// httpError is an error with a status and a message fit for the user.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

var errNotFound = errorf(http.StatusNotFound, "There is nothing at this address.")

// handle runs h and renders its error: the user sees the message of an
// httpError, or a generic one while the cause goes to the log.
func (s *server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
		case errors.Is(err, storage.ErrNotFound):
			he = errNotFound.(*httpError)
		case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("console: database unavailable", "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusServiceUnavailable, "The database is not answering right now. Try again in a moment."}
		default:
			s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "Something went wrong on the server. The details are in the server log."}
		}
		s.render(w, r, he.status, "error", "Error", "", map[string]any{"Status": he.status, "StatusText": http.StatusText(he.status), "Message": he.msg})
	}
}

// view is what every template gets: the page's data plus the layout's.
type view struct {
	Title   string
	Nav     string
	User    string
	Role    Role
	CSRF    string
	Version string
	Now     time.Time
	Data    any
	Banner  string // the CA's offline-root warning, on every page
}

// Can says whether the signed-in user's role allows what needs role need;
// templates hide buttons with it ({{if $.Can "operator"}}). requireRole
// enforces the same on the server.
func (v view) Can(need string) bool { return v.Role.Allows(Role(need)) }

type pages struct {
	byName map[string]*template.Template
}

// loadPages parses layout.html with each page template, once, at start.
func loadPages(as *assets) (*pages, error) {
	funcs := template.FuncMap{
		"asset":    as.path,
		"rel":      relTime,
		"exact":    exactTime,
		"date":     func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"short":    shortID,
		"join":     strings.Join,
		"query":    queryString,
		"reason":   revocation.Name,
		"thousand": thousands,
		// words splits a command line at its spaces, so a page can let it
		// wrap between words only (not after the "--" of a flag).
		"words": func(line string) []string { return strings.Split(line, " ") },
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse console layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("parse console page %s: %w", base, err)
		}
		ps.byName[base] = t
	}
	return ps, nil
}

// render executes page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	t, ok := s.pages.byName[page]
	if !ok {
		s.log.Error("console: unknown page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Nav: nav, Version: s.cfg.Version, Now: s.now(), Data: data}
	if se := sessionFrom(r.Context()); se != nil {
		v.User, v.CSRF, v.Role = se.Username, se.CSRFToken, roleFrom(r.Context())
		if s.cfg.CAOps != nil {
			v.Banner = s.cfg.CAOps.Warning()
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("console: render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// relTime says how far t is from now in words: "in 12 days", "3 hours ago".
func relTime(now, t time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	case d < 730*24*time.Hour:
		s = plural(int(d/(30*24*time.Hour)), "month")
	default:
		s = plural(int(d/(365*24*time.Hour)), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// exactTime is the hover text of relative times.
func exactTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// queryString builds "?k=v&..." from pairs, leaving out empty values.
func queryString(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return "?"
	}
	return "?" + v.Encode()
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// onePage cuts a list fetched with Limit pageSize+1 (keyset paging) to one
// page, and returns the ID the next page starts after, or "" on the last.
func onePage[T any](list []T, id func(*T) string) ([]T, string) {
	if len(list) <= pageSize {
		return list, ""
	}
	return list[:pageSize], id(&list[pageSize-1])
}
