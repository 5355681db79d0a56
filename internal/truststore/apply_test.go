package truststore

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
)

// fakeStore keeps certmint's entries in a map; updates can be made to fail.
type fakeStore struct {
	entries map[string]*x509.Certificate
	fail    error
	updates int
}

func (f *fakeStore) Name() string { return "fake" }

func (f *fakeStore) Installed(context.Context) (map[string]*x509.Certificate, error) {
	out := map[string]*x509.Certificate{}
	for k, v := range f.entries {
		out[k] = v
	}
	return out, nil
}

func (f *fakeStore) Update(_ context.Context, add []*x509.Certificate, remove []string) error {
	f.updates++
	if f.fail != nil {
		return f.fail
	}
	for _, c := range add {
		f.entries[Fingerprint(c)] = c
	}
	for _, fp := range remove {
		delete(f.entries, fp)
	}
	return nil
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	a, b, c := newRoot(t, "A"), newRoot(t, "B"), newRoot(t, "C")
	fa, fb, fc := Fingerprint(a), Fingerprint(b), Fingerprint(c)

	t.Run("ok/install-is-idempotent", func(t *testing.T) {
		s := &fakeStore{entries: map[string]*x509.Certificate{}}
		r := Install(ctx, []Store{s}, []*x509.Certificate{a, b, a})[0]
		if r.Err != nil || len(r.Added) != 2 || len(s.entries) != 2 {
			t.Fatalf("first install: %+v, entries %d", r, len(s.entries))
		}
		r = Install(ctx, []Store{s}, []*x509.Certificate{a, b})[0]
		if len(r.Added) != 0 || len(r.Present) != 2 || s.updates != 1 {
			t.Fatalf("second install changed the store: %+v, updates %d", r, s.updates)
		}
	})
	t.Run("ok/uninstall-one", func(t *testing.T) {
		s := &fakeStore{entries: map[string]*x509.Certificate{fa: a, fb: b}}
		r := Uninstall(ctx, []Store{s}, []string{fa, fc})[0]
		if r.Err != nil || len(r.Removed) != 1 || r.Removed[0] != fa || s.entries[fb] == nil {
			t.Fatalf("uninstall A: %+v, left %v", r, s.entries)
		}
	})
	t.Run("ok/uninstall-all", func(t *testing.T) {
		s := &fakeStore{entries: map[string]*x509.Certificate{fa: a, fb: b}}
		if r := Uninstall(ctx, []Store{s}, nil)[0]; len(r.Removed) != 2 || len(s.entries) != 0 {
			t.Fatalf("uninstall all: %+v, left %v", r, s.entries)
		}
	})
	t.Run("ok/sync-removes-only-managed-roots-that-left", func(t *testing.T) {
		// A left the bundle and the agent had installed it; B was
		// installed by hand; C is the new root.
		s := &fakeStore{entries: map[string]*x509.Certificate{fa: a, fb: b}}
		r := Sync(ctx, []Store{s}, []*x509.Certificate{c}, []string{fa})[0]
		if r.Err != nil || s.entries[fa] != nil || s.entries[fb] == nil || s.entries[fc] == nil {
			t.Fatalf("sync: %+v, left %v", r, s.entries)
		}
	})
	t.Run("fail/update-error-is-reported-not-claimed", func(t *testing.T) {
		s := &fakeStore{entries: map[string]*x509.Certificate{}, fail: errors.New("no")}
		r := Install(ctx, []Store{s}, []*x509.Certificate{a})[0]
		if r.Err == nil || len(r.Added) != 0 {
			t.Fatalf("failed update: %+v", r)
		}
	})
}

func TestParseRootsRefusesLeaf(t *testing.T) {
	root, key := newCert(t, "Root", true, nil, nil)
	leaf, _ := newCert(t, "leaf", false, root, key)
	if _, err := ParseRoots(append(encodePEM(root), encodePEM(leaf)...)); err == nil {
		t.Fatal("a leaf was accepted as a root")
	}
	got, err := ParseRoots(encodePEM(root))
	if err != nil || len(got) != 1 {
		t.Fatalf("root: %v", err)
	}
}

func TestEntryNames(t *testing.T) {
	fp := Fingerprint(newRoot(t, "A"))
	for name, want := range map[string]string{
		EntryName(fp):              fp,
		"debian:" + EntryName(fp):  "",
		EntryName(fp[:10]):         "",
		"certmint-" + fp + "x":     "",
		"CERTMINT-" + fp:           fp, // keytool lowercases aliases
		"mkcert development CA 12": "",
	} {
		if got := fingerprintOf(name); got != want {
			t.Errorf("fingerprintOf(%q) = %q, want %q", name, got, want)
		}
	}
}
