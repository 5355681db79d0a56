package truststore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
)

// NSSStore is one NSS certificate database (cert9.db): Chromium's
// ~/.pki/nssdb or a Firefox profile, changed through certutil.
type NSSStore struct {
	Dir      string
	Certutil string
	run      runner
}

var _ Store = (*NSSStore)(nil)

// Name implements Store.
func (s *NSSStore) Name() string { return "nss " + s.Dir }

func (s *NSSStore) certutil(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return s.run(ctx, nil, stdin, s.Certutil, append(args, "-d", "sql:"+s.Dir)...)
}

// Installed implements Store: the certificates whose nickname is
// certmint's, each read back to check its fingerprint.
func (s *NSSStore) Installed(ctx context.Context) (map[string]*x509.Certificate, error) {
	out, err := s.certutil(ctx, nil, "-L")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Dir, err)
	}
	found := map[string]*x509.Certificate{}
	for _, nick := range parseCertutilList(out) {
		fp := fingerprintOf(nick)
		if fp == "" {
			continue
		}
		pemText, err := s.certutil(ctx, nil, "-L", "-n", nick, "-a")
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", nick, s.Dir, err)
		}
		certs, err := ParseRoots(pemText)
		if err != nil || Fingerprint(certs[0]) != fp {
			continue
		}
		found[fp] = certs[0]
	}
	return found, nil
}

// parseCertutilList returns the nicknames of `certutil -L`: each line
// after the header is a nickname, padding and the trust attributes.
func parseCertutilList(out []byte) []string {
	var nicks []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		i := strings.LastIndex(line, " ")
		if i < 0 || !strings.HasPrefix(line, entryPrefix) {
			continue // the header, blank lines, and nicknames not ours
		}
		nicks = append(nicks, strings.TrimSpace(line[:i]))
	}
	return nicks
}

// Update implements Store. "C,," trusts the root to issue TLS server
// certificates, as mkcert -install does.
func (s *NSSStore) Update(ctx context.Context, add []*x509.Certificate, remove []string) error {
	if err := writable(s.Dir); err != nil {
		return err
	}
	for _, c := range add {
		if _, err := s.certutil(ctx, encodePEM(c), "-A", "-a", "-t", "C,,",
			"-n", EntryName(Fingerprint(c))); err != nil {
			return fmt.Errorf("add to %s: %w", s.Dir, err)
		}
	}
	for _, fp := range remove {
		if _, err := s.certutil(ctx, nil, "-D", "-n", EntryName(fp)); err != nil {
			return fmt.Errorf("delete from %s: %w", s.Dir, err)
		}
	}
	return nil
}

// nssDirs are the databases of the user: Chromium's (and other NSS
// programs') ~/.pki/nssdb and every Firefox profile, snap's included.
func nssDirs(env Env) []string {
	var dirs []string
	for _, pattern := range []string{
		".pki/nssdb",
		".mozilla/firefox/*",
		"snap/firefox/common/.mozilla/firefox/*",
		"snap/chromium/current/.pki/nssdb",
	} {
		matches, _ := filepath.Glob(filepath.Join(env.Home, pattern))
		for _, d := range matches {
			if env.exists(filepath.Join(d, "cert9.db")) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}
