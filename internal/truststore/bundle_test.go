package truststore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// bundleServer serves pemText at /roots/bundle.pem over TLS with a
// certificate issued by root.
func bundleServer(t *testing.T, leaf tls.Certificate, pemText []byte) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != BundlePath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pemText)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/acme/directory"
}

func TestFetchBundle(t *testing.T) {
	ctx := context.Background()
	root, key := newCert(t, "Root", true, nil, nil)
	leaf, leafKey := newCert(t, "server", false, root, key)
	next := newRoot(t, "Next root")
	bundle := append(encodePEM(root), encodePEM(next)...)
	good := bundleServer(t, tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}, bundle)

	got, err := FetchPinned(ctx, good, Fingerprint(root))
	if err != nil || len(got) != 2 || Fingerprint(got[1]) != Fingerprint(next) {
		t.Fatalf("pinned fetch: %v %v", got, err)
	}
	if _, err := FetchPinned(ctx, good, Fingerprint(next)); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("a pin the server's TLS does not chain to: %v", err)
	}
	if _, err := FetchPinned(ctx, good, Fingerprint(newRoot(t, "other"))); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("a pin not in the bundle: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if got, err := Fetch(ctx, good, pool); err != nil || len(got) != 2 {
		t.Fatalf("verified fetch: %v %v", got, err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(next)
	if _, err := Fetch(ctx, good, pool); err == nil {
		t.Fatal("fetch trusted a server outside the pool")
	}

	// A server in the middle that hands out the pinned root in its bundle
	// but presents its own certificate is refused.
	evilRoot, evilKey := newCert(t, "Evil", true, nil, nil)
	evilLeaf, evilLeafKey := newCert(t, "server", false, evilRoot, evilKey)
	evil := bundleServer(t, tls.Certificate{Certificate: [][]byte{evilLeaf.Raw}, PrivateKey: evilLeafKey},
		append(encodePEM(root), encodePEM(evilRoot)...))
	if _, err := FetchPinned(ctx, evil, Fingerprint(root)); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("man in the middle: %v", err)
	}
}
