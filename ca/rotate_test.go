package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memIssuers is an IssuerStore in memory with the contract's conditional
// moves (storage implements the real one).
type memIssuers struct {
	mu   sync.Mutex
	recs []IssuerRecord
}

func (m *memIssuers) ListIssuers(context.Context) ([]IssuerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs), nil
}

func (m *memIssuers) ChangeIssuers(_ context.Context, add []IssuerRecord, moves []IssuerMove, certs map[string][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := append(slices.Clone(m.recs), add...)
	for id, pem := range certs {
		i := slices.IndexFunc(next, func(r IssuerRecord) bool { return r.ID == id && len(r.CertPEM) == 0 })
		if i < 0 {
			return ErrIssuerConflict
		}
		next[i].CertPEM = pem
	}
	for _, mv := range moves {
		i := slices.IndexFunc(next, func(r IssuerRecord) bool { return r.ID == mv.ID && r.State == mv.From })
		if i < 0 {
			return ErrIssuerConflict
		}
		next[i].State = mv.To
	}
	m.recs = next
	return nil
}

func (m *memIssuers) set(id string, f func(*IssuerRecord)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.recs {
		if m.recs[i].ID == id {
			f(&m.recs[i])
		}
	}
}

func recordedCA(t *testing.T, clock *fakeClock) (*CA, *memIssuers) {
	t.Helper()
	dir := t.TempDir() + "/ca"
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.Records(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	st := &memIssuers{recs: recs}
	loaded, err := Load(Options{Now: clock.Now, Logger: quietLogger()}, recs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loaded.Close() })
	return loaded, st
}

func issueAt(t *testing.T, c *CA) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := NewSerial()
	der, err := c.Issue(Template{PublicKey: key.Public(), DNSNames: []string{"a.test"}, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return leaf
}

func countStates(recs []IssuerRecord) map[string]int {
	n := map[string]int{}
	for _, r := range recs {
		n[string(r.Role)+"/"+string(r.State)]++
	}
	return n
}

// TestAutomaticRenewal drives Tick with an injected clock: nothing happens
// until the active intermediate's remaining life drops below the longest
// profile plus the margin; then a new intermediate takes over, and a leaf
// issued just before and just after both get their full lifetime without
// outliving their issuer.
func TestAutomaticRenewal(t *testing.T) {
	clock := newFakeClock()
	c, st := recordedCA(t, clock)
	ctx := context.Background()
	longest := DefaultProfile().Validity
	old := c.Active()
	renewAt := RenewAt(old.Cert.NotAfter, longest, 0)
	opts := TickOptions{RotateOptions: RotateOptions{Now: clock.Now}, LongestValidity: longest}

	clock.Set(renewAt.Add(-time.Hour))
	res, err := Tick(ctx, st, opts)
	if err != nil || res.Renewed != "" || res.Warning != "" {
		t.Fatalf("an hour before the renewal point: %+v, %v", res, err)
	}
	leaf := issueAt(t, c)
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != longest || leaf.NotAfter.After(old.Cert.NotAfter) {
		t.Fatalf("leaf before renewal lives %s until %s; issuer until %s", got, leaf.NotAfter, old.Cert.NotAfter)
	}

	clock.Set(renewAt.Add(time.Hour))
	res, err = Tick(ctx, st, opts)
	if err != nil || res.Renewed == "" {
		t.Fatalf("after the renewal point: %+v, %v", res, err)
	}
	recs, _ := st.ListIssuers(ctx)
	if n := countStates(recs); n["intermediate/active"] != 1 || n["intermediate/retiring"] != 1 {
		t.Fatalf("states after renewal: %v", n)
	}
	if err := c.Adopt(recs); err != nil {
		t.Fatal(err)
	}
	if c.Active().ID != res.Renewed || c.Active().ID == old.ID {
		t.Fatalf("active %s, want the renewed %s", c.Active().ID, res.Renewed)
	}
	if c.Active().Cert.PermittedDNSDomainsCritical != old.Cert.PermittedDNSDomainsCritical {
		t.Fatal("constraints changed across renewal")
	}
	leaf = issueAt(t, c)
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != longest || leaf.NotAfter.After(c.Active().Cert.NotAfter) {
		t.Fatalf("leaf after renewal lives %s until %s; issuer until %s", got, leaf.NotAfter, c.Active().Cert.NotAfter)
	}
	if err := leaf.CheckSignatureFrom(c.Active().Cert); err != nil {
		t.Fatal(err)
	}
	// A second tick does not renew again.
	if res, err := Tick(ctx, st, opts); err != nil || res.Renewed != "" {
		t.Fatalf("second tick: %+v, %v", res, err)
	}
	// The retiring intermediate still signs its CRL.
	if len(c.CRLIssuers()) != 2 {
		t.Fatalf("CRL issuers: %d, want the active and the retiring one", len(c.CRLIssuers()))
	}
	// Past its notAfter it retires: no leaf of it can be valid any more.
	clock.Set(old.Cert.NotAfter.Add(time.Hour))
	if res, err := Tick(ctx, st, opts); err != nil || res.Retired != 1 {
		t.Fatalf("tick past the old intermediate's notAfter: %+v, %v", res, err)
	}
	recs, _ = st.ListIssuers(ctx)
	if n := countStates(recs); n["intermediate/retired"] != 1 {
		t.Fatalf("states after the old intermediate expired: %v", n)
	}
}

// TestOfflineRootWarning: with the root key offline, Tick never renews; it
// warns from OfflineWarning before the renewal point, and keeps warning
// while the new CSR waits for the root.
func TestOfflineRootWarning(t *testing.T) {
	clock := newFakeClock()
	c, st := recordedCA(t, clock)
	ctx := context.Background()
	st.set(c.Active().ParentID, func(r *IssuerRecord) { r.KeyRef, r.KeyPEM = "", nil })
	longest := DefaultProfile().Validity
	renewAt := RenewAt(c.Active().Cert.NotAfter, longest, 0)
	opts := TickOptions{RotateOptions: RotateOptions{Now: clock.Now}, LongestValidity: longest}

	clock.Set(renewAt.Add(-OfflineWarning - time.Hour))
	if res, err := Tick(ctx, st, opts); err != nil || res.Warning != "" {
		t.Fatalf("before the warning window: %+v, %v", res, err)
	}
	clock.Set(renewAt.Add(-OfflineWarning + time.Hour))
	res, err := Tick(ctx, st, opts)
	if err != nil || !strings.Contains(res.Warning, "rotate intermediate --csr-out") || res.Renewed != "" {
		t.Fatalf("in the warning window: %+v, %v", res, err)
	}
	rot, err := RotateIntermediate(ctx, st, RotateOptions{Now: clock.Now})
	if err != nil || rot.CSR == nil {
		t.Fatalf("rotate with an offline root: %+v, %v", rot, err)
	}
	clock.Set(renewAt.Add(time.Hour))
	if res, err := Tick(ctx, st, opts); err != nil || !strings.Contains(res.Warning, "import-intermediate") || res.Renewed != "" {
		t.Fatalf("CSR pending past the renewal point: %+v, %v", res, err)
	}
}

// TestRootRotation: both roots are in the bundle during the overlap and
// issuance stays on the old chain; at its end Tick switches, the old root
// leaves the bundle, and new leaves chain to the new root.
func TestRootRotation(t *testing.T) {
	clock := newFakeClock()
	c, st := recordedCA(t, clock)
	ctx := context.Background()
	oldRoot := c.Root()
	res, err := RotateRoot(ctx, st, RotateOptions{Now: clock.Now, Overlap: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seqBefore := c.BundleSequence()
	recs, _ := st.ListIssuers(ctx)
	if err := c.Adopt(recs); err != nil {
		t.Fatal(err)
	}
	if n := len(pemBlocks(c.BundlePEM())); n != 2 || len(c.BundleRoots()) != 2 {
		t.Fatalf("bundle during the overlap holds %d roots (BundleRoots %d), want 2", n, len(c.BundleRoots()))
	}
	seqOverlap := c.BundleSequence()
	if seqOverlap <= seqBefore {
		t.Fatalf("bundle sequence %d after a root joined, was %d: it must grow", seqOverlap, seqBefore)
	}
	if !c.Root().Equal(oldRoot) {
		t.Fatal("issuance left the old chain before the overlap ended")
	}
	opts := TickOptions{RotateOptions: RotateOptions{Now: clock.Now}, LongestValidity: DefaultProfile().Validity}
	clock.Set(clock.Now().Add(47 * time.Hour))
	if r, err := Tick(ctx, st, opts); err != nil || r.Switched != "" {
		t.Fatalf("switch before the overlap ended: %+v %v", r, err)
	}
	clock.Set(clock.Now().Add(2 * time.Hour))
	if r, err := Tick(ctx, st, opts); err != nil || r.Switched != res.Issuer.ID {
		t.Fatalf("no switch at the end of the overlap: %+v %v", r, err)
	}
	recs, _ = st.ListIssuers(ctx)
	if err := c.Adopt(recs); err != nil {
		t.Fatal(err)
	}
	bundle := pemBlocks(c.BundlePEM())
	if len(bundle) != 1 || c.Root().Equal(oldRoot) || !slices.Equal(bundle[0], c.Root().Raw) {
		t.Fatalf("after the switch: %d roots in the bundle, root changed %v", len(bundle), !c.Root().Equal(oldRoot))
	}
	if roots := c.BundleRoots(); len(roots) != 1 || !roots[0].Equal(c.Root()) {
		t.Fatalf("BundleRoots after the switch: %d", len(roots))
	}
	if seq := c.BundleSequence(); seq <= seqOverlap {
		t.Fatalf("bundle sequence %d after the old root left, was %d: it must grow", seq, seqOverlap)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	inter := x509.NewCertPool()
	inter.AddCert(c.Intermediate())
	leaf := issueAt(t, c)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("new leaf does not chain to the new root: %v", err)
	}
	if n := countStates(recs); n["root/retiring"] != 1 || n["intermediate/retiring"] != 1 || n["root/active"] != 1 {
		t.Fatalf("states after the switch: %v", n)
	}
}

// TestLoadRefusesWithoutPassphrase: a replica without the passphrase the
// keys were recorded under gets ErrNoKey.
func TestLoadRefusesWithoutPassphrase(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir() + "/ca"
	c, err := Open(Options{Dir: dir, Now: clock.Now, Logger: quietLogger(), Passphrase: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.Records(dir)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Logger: quietLogger()}, recs); err == nil || !strings.Contains(err.Error(), ErrNoKey.Error()) {
		t.Fatalf("Load without passphrase: %v, want ErrNoKey", err)
	}
	ok, err := Load(Options{Logger: quietLogger(), Passphrase: []byte("s3cret")}, recs)
	if err != nil {
		t.Fatal(err)
	}
	ok.Close()
}
