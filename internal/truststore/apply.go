package truststore

import (
	"context"
	"crypto/x509"
	"sort"
)

// Result is what one store's change did.
type Result struct {
	Store   string
	Added   []*x509.Certificate // roots newly trusted
	Present []*x509.Certificate // roots certmint had already added
	Removed []string            // fingerprints of the entries taken out
	Err     error               // the store could not be read or changed
}

// Change brings one store to the state asked for: every root of want
// trusted through a certmint entry, and every certmint entry for which
// drop says true taken out (unless its root is wanted). Entries certmint
// did not make are never touched.
func Change(ctx context.Context, s Store, want []*x509.Certificate, drop func(fingerprint string) bool) Result {
	r := Result{Store: s.Name()}
	have, err := s.Installed(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	wanted := map[string]bool{}
	for _, c := range want {
		fp := Fingerprint(c)
		if wanted[fp] {
			continue
		}
		wanted[fp] = true
		if _, ok := have[fp]; ok {
			r.Present = append(r.Present, c)
		} else {
			r.Added = append(r.Added, c)
		}
	}
	if drop != nil {
		for fp := range have {
			if !wanted[fp] && drop(fp) {
				r.Removed = append(r.Removed, fp)
			}
		}
		sort.Strings(r.Removed)
	}
	if len(r.Added) == 0 && len(r.Removed) == 0 {
		return r
	}
	if err := s.Update(ctx, r.Added, r.Removed); err != nil {
		r.Err = err
		r.Added, r.Removed = nil, nil
	}
	return r
}

// Install trusts the roots in every store.
func Install(ctx context.Context, stores []Store, roots []*x509.Certificate) []Result {
	return each(stores, func(s Store) Result { return Change(ctx, s, roots, nil) })
}

// Uninstall takes out certmint's entries for the given fingerprints, or
// every certmint entry when none is given.
func Uninstall(ctx context.Context, stores []Store, fingerprints []string) []Result {
	set := map[string]bool{}
	for _, fp := range fingerprints {
		set[fp] = true
	}
	drop := func(fp string) bool { return len(set) == 0 || set[fp] }
	return each(stores, func(s Store) Result { return Change(ctx, s, nil, drop) })
}

// Sync trusts every root of the bundle and takes out the entries of the
// roots in managed (those an earlier Sync added) that left the bundle;
// roots installed by other means stay.
func Sync(ctx context.Context, stores []Store, bundle []*x509.Certificate, managed []string) []Result {
	set := map[string]bool{}
	for _, fp := range managed {
		set[fp] = true
	}
	return each(stores, func(s Store) Result { return Change(ctx, s, bundle, func(fp string) bool { return set[fp] }) })
}

// Status is what one store trusts through certmint entries.
type Status struct {
	Store string
	Roots map[string]*x509.Certificate
	Err   error
}

// Statuses reads every store.
func Statuses(ctx context.Context, stores []Store) []Status {
	out := make([]Status, 0, len(stores))
	for _, s := range stores {
		roots, err := s.Installed(ctx)
		out = append(out, Status{Store: s.Name(), Roots: roots, Err: err})
	}
	return out
}

func each(stores []Store, f func(Store) Result) []Result {
	out := make([]Result, 0, len(stores))
	for _, s := range stores {
		out = append(out, f(s))
	}
	return out
}
