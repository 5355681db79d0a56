package truststore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// systemFlavor is how one distribution family keeps its local anchors.
type systemFlavor struct {
	dir    string   // where local anchors go
	ext    string   // the extension the update tool picks up
	update []string // the command that rebuilds the system bundle
	// certsDir and hooksDir are Debian's: where update-ca-certificates
	// links each root, and the hooks it tells of each change. Empty for
	// update-ca-trust, which rebuilds everything from the anchors.
	certsDir, hooksDir string
}

// The two families: update-ca-certificates reads only *.crt from its
// local directory; update-ca-trust reads any PEM from its anchors.
var (
	debianFlavor = systemFlavor{dir: "/usr/local/share/ca-certificates", ext: ".crt",
		update: []string{"update-ca-certificates"}, certsDir: "/etc/ssl/certs", hooksDir: "/etc/ca-certificates/update.d"}
	redhatFlavor = systemFlavor{dir: "/etc/pki/ca-trust/source/anchors", ext: ".pem",
		update: []string{"update-ca-trust", "extract"}}
)

// SystemStore is the operating system's trust: one PEM file per root in
// the local anchors directory, then the distribution's update command
// rebuilds the bundle every TLS library reads (OpenSSL, curl, Go; on
// Debian its hook also updates the Java cacerts of ca-certificates-java).
type SystemStore struct {
	flavor systemFlavor
	run    runner
}

var _ Store = (*SystemStore)(nil)

// Name implements Store.
func (s *SystemStore) Name() string { return "system " + s.flavor.dir }

// Installed implements Store: the certmint-<fingerprint> files.
func (s *SystemStore) Installed(context.Context) (map[string]*x509.Certificate, error) {
	out := map[string]*x509.Certificate{}
	entries, err := os.ReadDir(s.flavor.dir)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.flavor.dir, err)
	}
	for _, e := range entries {
		fp := fingerprintOf(strings.TrimSuffix(e.Name(), s.flavor.ext))
		if fp == "" || !strings.HasSuffix(e.Name(), s.flavor.ext) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.flavor.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
		certs, err := ParseRoots(data)
		if err != nil || Fingerprint(certs[0]) != fp {
			continue // not what certmint wrote: leave it alone
		}
		out[fp] = certs[0]
	}
	return out, nil
}

func (s *SystemStore) path(fp string) string {
	return filepath.Join(s.flavor.dir, EntryName(fp)+s.flavor.ext)
}

// Update implements Store. When the update command fails, the files just
// added are taken back, so Installed keeps telling the truth.
func (s *SystemStore) Update(ctx context.Context, add []*x509.Certificate, remove []string) error {
	if err := os.MkdirAll(s.flavor.dir, 0o755); err != nil && !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("create %s: %w", s.flavor.dir, err)
	}
	if err := writable(s.flavor.dir); err != nil {
		return err
	}
	var added []string
	undo := func() {
		for _, p := range added {
			_ = os.Remove(p)
		}
	}
	for _, c := range add {
		p := s.path(Fingerprint(c))
		if err := os.WriteFile(p, encodePEM(c), 0o644); err != nil {
			undo()
			return fmt.Errorf("write %s: %w", p, err)
		}
		added = append(added, p)
	}
	for _, fp := range remove {
		if err := os.Remove(s.path(fp)); err != nil && !errors.Is(err, os.ErrNotExist) {
			undo()
			return fmt.Errorf("remove %s: %w", s.path(fp), err)
		}
	}
	forgotten := s.unlink(remove)
	if _, err := s.run(ctx, nil, nil, s.flavor.update[0], s.flavor.update[1:]...); err != nil {
		undo()
		return fmt.Errorf("rebuild the system bundle: %w", err)
	}
	return s.tellHooks(ctx, forgotten)
}

// unlink does for removed roots what update-ca-certificates does for a
// root it removes, because it never notices a removed local root: without
// --fresh its symlink in /etc/ssl/certs, the hash links to it and the
// hooks' copies (ca-certificates-java's "debian:" alias in Java's cacerts)
// would stay, and --fresh re-adds every root, rewriting Java's cacerts.
// Only links to certmint's own files are removed. It returns the removed
// links in the hooks' "-PATH" form.
func (s *SystemStore) unlink(remove []string) []string {
	if s.flavor.certsDir == "" || len(remove) == 0 {
		return nil
	}
	entries, _ := os.ReadDir(s.flavor.certsDir)
	var forgotten []string
	for _, fp := range remove {
		name := EntryName(fp) + ".pem"
		pem := filepath.Join(s.flavor.certsDir, name)
		if target, err := os.Readlink(pem); err != nil || target != s.path(fp) {
			continue
		}
		for _, e := range entries { // the hash links, e.g. f980d826.0
			p := filepath.Join(s.flavor.certsDir, e.Name())
			if t, err := os.Readlink(p); err == nil && (t == name || t == pem) {
				_ = os.Remove(p)
			}
		}
		if err := os.Remove(pem); err == nil {
			forgotten = append(forgotten, "-"+pem)
		}
	}
	return forgotten
}

// tellHooks runs each hook of update-ca-certificates with the removed
// links on stdin, as update-ca-certificates runs them (run-parts names).
func (s *SystemStore) tellHooks(ctx context.Context, forgotten []string) error {
	if len(forgotten) == 0 {
		return nil
	}
	entries, err := os.ReadDir(s.flavor.hooksDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", s.flavor.hooksDir, err)
	}
	stdin := []byte(strings.Join(forgotten, "\n") + "\n")
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 || !runPartsName.MatchString(e.Name()) {
			continue
		}
		hook := filepath.Join(s.flavor.hooksDir, e.Name())
		if _, err := s.run(ctx, nil, stdin, hook); err != nil {
			return fmt.Errorf("tell %s of the removed root: %w", hook, err)
		}
	}
	return nil
}

// runPartsName is the file names run-parts runs (Debian's default).
var runPartsName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
