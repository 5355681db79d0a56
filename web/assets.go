package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// assets serves the embedded static files under fingerprinted names
// ("app.3f2a9c1b.css"): a changed file gets a new URL, so every file can
// be cached for a year without ever going stale.
type assets struct {
	byLogical map[string]string // "app.css" -> "/static/app.3f2a9c1b.css"
	files     map[string][]byte // "/static/app.3f2a9c1b.css" -> content
}

func loadAssets() (*assets, error) {
	a := &assets{byLogical: map[string]string{}, files: map[string][]byte{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := path.Base(p)
		ext := path.Ext(name)
		url := "/static/" + strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		a.byLogical[name] = url
		a.files[url] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load console assets: %w", err)
	}
	return a, nil
}

// path is the template function "asset": the fingerprinted URL of name.
func (a *assets) path(name string) (string, error) {
	u, ok := a.byLogical[name]
	if !ok {
		return "", fmt.Errorf("no console asset %q", name)
	}
	return u, nil
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := a.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(r.URL.Path))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(b)
}
