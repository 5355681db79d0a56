package agent

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/certmint/certmint/internal/truststore"
)

// The agent trusts the CA's bundle, not one root: every run fetches
// GET /roots/bundle.pem over TLS verified against the roots it trusts
// already, and keeps root.pem (and, through the command, truststore.p12)
// equal to it. During a root rotation's overlap the bundle holds the old
// and the new root, so the fleet trusts the new root before any
// certificate needs it; after the switch the old one leaves.

// filePin records the fingerprint the state's root.pem was first anchored
// with: after a root rotation the pinned root leaves the bundle, and the
// agent keeps trusting what it fetched under that pin.
const filePin = "root.pin"

// Bundle is every root the agent trusts, oldest first.
func (a *Agent) Bundle() []*x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.bundle)
}

// takeBundleChanged reports whether the bundle changed since the last
// call and clears the flag.
func (a *Agent) takeBundleChanged() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.bundleChanged
	a.bundleChanged = false
	return ch
}

// loadStoredBundle returns the roots of the state's root.pem when they
// are anchored by root, or by the pin they were first fetched under.
func loadStoredBundle(dir string, root *x509.Certificate, pin string) []*x509.Certificate {
	data, err := os.ReadFile(filepath.Join(dir, fileRoot))
	if err != nil {
		return nil
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil
	}
	for _, c := range certs {
		if root != nil && c.Equal(root) {
			return certs
		}
	}
	if p, err := os.ReadFile(filepath.Join(dir, filePin)); err == nil && pin != "" && strings.TrimSpace(string(p)) == pin {
		return certs
	}
	return nil
}

// setBundle makes certs the trusted roots and writes root.pem.
func (a *Agent) setBundle(certs []*x509.Certificate) error {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	a.mu.Lock()
	changed := !slices.EqualFunc(a.bundle, certs, func(x, y *x509.Certificate) bool { return x.Equal(y) })
	a.bundle, a.roots, a.root = certs, pool, certs[0]
	if changed {
		a.bundleChanged = true
	}
	a.mu.Unlock()
	return a.storeRoot()
}

// refreshBundle fetches the server's bundle and trusts it. The fetch is
// authenticated by TLS against the roots trusted now, so a root enters
// only from the server the agent already trusts.
func (a *Agent) refreshBundle(ctx context.Context) error {
	var account string
	if a.acct != nil && a.acct.reg != nil {
		account = a.acct.reg.URI
	}
	certs, err := truststore.FetchAs(ctx, a.cfg.DirectoryURL, a.Roots(), account)
	if err != nil {
		return err
	}
	if err := a.setBundle(certs); err != nil {
		return err
	}
	if a.takeBundleChanged() {
		a.log.Info("the CA's bundle of roots changed", "roots", len(certs))
		if a.cfg.OnBundle != nil {
			a.cfg.OnBundle(certs)
		}
	}
	return nil
}

// refreshBundleLogged is refreshBundle for the loop: a failure is
// logged, the certificate matters more.
func (a *Agent) refreshBundleLogged(ctx context.Context) {
	if err := a.refreshBundle(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("cannot refresh the CA bundle; trusting the roots as before", "err", err.Error())
	}
}

// writePin records the pin root.pem was anchored with.
func (a *Agent) writePin() error {
	if a.cfg.RootFingerprint == "" {
		return nil
	}
	pin, err := parseFingerprint(a.cfg.RootFingerprint)
	if err != nil {
		return nil
	}
	path := filepath.Join(a.cfg.StateDir, filePin)
	if old, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(old)) == pin {
		return nil
	}
	return atomicfile.Write(path, []byte(pin+"\n"), 0o600)
}
