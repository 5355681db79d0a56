package auditchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

// memStore is an in-memory Store: the audit log and its seals.
type memStore struct {
	mu      sync.Mutex
	entries map[string]audit.Event
	seals   []Seal
	lease   string
}

func newMemStore() *memStore { return &memStore{entries: map[string]audit.Event{}} }

func (m *memStore) add(e audit.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[e.ID] = e
}

func (m *memStore) AuditSeals(_ context.Context, after int64, limit int) ([]Seal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Seal
	for _, s := range m.seals {
		if s.Seq > after && len(out) < limit {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *memStore) sortedIDs() []string {
	ids := make([]string, 0, len(m.entries))
	for id := range m.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (m *memStore) AuditEntries(_ context.Context, after, upto string, limit int) ([]audit.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Event
	for _, id := range m.sortedIDs() {
		if id > after && (upto == "" || id <= upto) && len(out) < limit {
			out = append(out, m.entries[id])
		}
	}
	return out, nil
}

func (m *memStore) CountAuditEntries(_ context.Context, after string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id := range m.entries {
		if id > after {
			n++
		}
	}
	return n, nil
}

func (m *memStore) LastAuditSeal(context.Context) (*Seal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seals) == 0 {
		return nil, nil
	}
	s := m.seals[len(m.seals)-1]
	s.Digests = ""
	return &s, nil
}

func (m *memStore) AddAuditSeal(_ context.Context, s Seal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.seals {
		if have.Seq == s.Seq {
			return fmt.Errorf("seal %d: %w", s.Seq, acme.ErrConflict)
		}
	}
	m.seals = append(m.seals, s)
	slices.SortFunc(m.seals, func(a, b Seal) int { return int(a.Seq - b.Seq) })
	return nil
}

func (m *memStore) AcquireLease(_ context.Context, _, holder string, _ time.Time, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease == "" {
		m.lease = holder
	}
	return m.lease == holder, nil
}

// clock is the tests' time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// entryAt makes an entry whose ID was made at t.
func entryAt(t time.Time, n int) audit.Event {
	id := acme.LastIDBefore(t.Add(time.Millisecond))
	id = id[:len(id)-3] + fmt.Sprintf("%03d", n) // distinct, still in t's millisecond
	return audit.Event{ID: id, At: t.UTC().Truncate(time.Microsecond), Actor: "alice", Action: audit.Login, Target: audit.User("alice"), Detail: fmt.Sprint(n)}
}

// testKey derives one key for the package's tests: Argon2id at the CA's
// cost takes a while, under the race detector more so.
var testKey = sync.OnceValue(func() []byte { return DeriveKey([]byte("correct horse"), []byte("0123456789abcdef")) })

func newSealer(st Store, c *clock, key []byte) *Sealer {
	return &Sealer{Store: st, Holder: "r1", Every: time.Second, Settle: time.Minute, Key: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.now}
}

// sealedLog is a store with 10 entries sealed into one seal and 2 newer
// ones not yet settled.
func sealedLog(t *testing.T, key []byte) (*memStore, *Sealer, *clock, []audit.Event) {
	t.Helper()
	c := &clock{t: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := newMemStore()
	var es []audit.Event
	for i := range 10 {
		e := entryAt(c.t.Add(time.Duration(i)*time.Second), i)
		st.add(e)
		es = append(es, e)
	}
	c.t = c.t.Add(2 * time.Minute)
	for i := range 2 {
		st.add(entryAt(c.t.Add(-time.Duration(i+1)*time.Second), 100+i)) // younger than Settle
	}
	s := newSealer(st, c, key)
	n, err := s.Once(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Once: %d seals, %v; want 1", n, err)
	}
	return st, s, c, es
}

func verify(t *testing.T, st Reader, o Options) Report {
	t.Helper()
	rep, err := Verify(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestSealAndVerify(t *testing.T) {
	st, _, _, _ := sealedLog(t, nil)
	rep := verify(t, st, Options{})
	if !rep.OK() || rep.Seals != 1 || rep.Covered != 10 || rep.Unsealed != 2 {
		t.Fatalf("report %+v (first %v), want OK, 1 seal, 10 covered, 2 unsealed", rep, rep.First)
	}
}

func TestVerifyNamesTheEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(st *memStore, es []audit.Event) string
		kind   string
	}{
		{"changed", func(st *memStore, es []audit.Event) string {
			e := es[4]
			e.Actor = "mallory"
			st.entries[e.ID] = e
			return e.ID
		}, Changed},
		{"changed/time", func(st *memStore, es []audit.Event) string {
			e := es[2]
			e.At = e.At.Add(time.Microsecond)
			st.entries[e.ID] = e
			return e.ID
		}, Changed},
		{"deleted", func(st *memStore, es []audit.Event) string {
			delete(st.entries, es[6].ID)
			return es[6].ID
		}, Deleted},
		{"deleted/last", func(st *memStore, es []audit.Event) string {
			delete(st.entries, es[9].ID)
			return es[9].ID
		}, Deleted},
		{"inserted", func(st *memStore, es []audit.Event) string {
			e := es[3]
			e.ID = e.ID[:len(e.ID)-1] + "v" // sorts after es[3], within the sealed range
			e.Detail = "forged"
			st.entries[e.ID] = e
			return e.ID
		}, Inserted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, _, es := sealedLog(t, nil)
			id := tc.tamper(st, es)
			rep := verify(t, st, Options{})
			if rep.OK() || rep.First.Kind != tc.kind || rep.First.EntryID != id {
				t.Fatalf("first problem %+v, want %s of %s", rep.First, tc.kind, id)
			}
			if !strings.Contains(rep.First.String(), id) {
				t.Fatalf("%q does not name the entry", rep.First.String())
			}
		})
	}
}

// TestLateCommitNotInserted: an entry whose ID was made before the
// newest sealed ones but that commits later (a slow transaction on
// another replica) is sealed by the next run, not taken for an insertion,
// as long as it commits within the settle window.
func TestLateCommitNotInserted(t *testing.T) {
	c := &clock{t: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := newMemStore()
	s := newSealer(st, c, nil)
	early := entryAt(c.t, 1)                 // made now, committed later
	st.add(entryAt(c.t.Add(time.Second), 2)) // made later, committed at once
	c.t = c.t.Add(30 * time.Second)          // within Settle: nothing sealed yet
	if n, err := s.Once(context.Background()); n != 0 || err != nil {
		t.Fatalf("sealed %d (%v) before the settle window passed", n, err)
	}
	st.add(early)
	c.t = c.t.Add(time.Minute)
	if n, err := s.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once: %d, %v", n, err)
	}
	if rep := verify(t, st, Options{}); !rep.OK() || rep.Covered != 2 {
		t.Fatalf("report %+v (first %v), want both entries sealed, intact", rep, rep.First)
	}
}

func TestRewrittenSeal(t *testing.T) {
	st, _, _, es := sealedLog(t, nil)
	// Edit an entry and its digest in the seal, but not the seal's hash.
	e := es[5]
	e.Detail = "edited"
	st.entries[e.ID] = e
	st.seals[0].Digests = strings.Replace(st.seals[0].Digests, EntryDigest(es[5]), EntryDigest(e), 1)
	rep := verify(t, st, Options{})
	if rep.OK() || rep.First.Kind != Broken || rep.First.Seal != 1 {
		t.Fatalf("first problem %+v, want seal 1 rewritten", rep.First)
	}
}

func TestKeyedSeals(t *testing.T) {
	key := testKey()
	st, _, _, _ := sealedLog(t, key)
	if st.seals[0].MAC == "" {
		t.Fatal("a sealer with a key wrote no MAC")
	}
	if rep := verify(t, st, Options{Key: key}); !rep.OK() || !rep.MACsChecked || rep.Keyed != 1 {
		t.Fatalf("report %+v (first %v), want OK with the MAC checked", rep, rep.First)
	}
	other := []byte("any other key of thirty-two byte")
	if rep := verify(t, st, Options{Key: other}); rep.OK() || !strings.Contains(rep.First.Detail, "MAC") {
		t.Fatalf("another key: %+v, want a MAC failure", rep.First)
	}
	// Rewriting the seal consistently without the key: the hash is
	// right, the MAC is not.
	st.seals[0].SealedAt = st.seals[0].SealedAt.Add(time.Second)
	st.seals[0].Hash = SealHash(st.seals[0], "")
	if rep := verify(t, st, Options{}); !rep.OK() {
		t.Fatalf("unkeyed check of a consistently rewritten seal: %v; a plain chain cannot see this", rep.First)
	}
	if rep := verify(t, st, Options{Key: key}); rep.OK() {
		t.Fatal("a seal rewritten without the key passed the MAC check")
	}
	if rep := verify(t, st, Options{SaltMissing: true}); rep.OK() {
		t.Fatal("a keyed seal passed with the salt gone")
	}
}

// TestNoForkNoDowngrade: two sealers on one chain never both write a
// seal number, and a replica without the key does not extend a keyed chain.
func TestNoForkNoDowngrade(t *testing.T) {
	key := testKey()
	st, s1, c, _ := sealedLog(t, key)
	c.t = c.t.Add(2 * time.Minute)
	for i := range 3 {
		st.add(entryAt(c.t.Add(-90*time.Second+time.Duration(i)*time.Second), 200+i))
	}
	s2 := newSealer(st, c, nil)
	s2.Holder = "r2"
	st.lease = "r2"
	if _, err := s2.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "CERTMINT_CA_PASSPHRASE") {
		t.Fatalf("keyless sealer on a keyed chain: %v", err)
	}
	st.lease = "r1"
	if n, err := s1.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once: %d, %v", n, err)
	}
	// A stale sealer that read seal 1 as the newest cannot write a second seal 2.
	stale := Seal{Seq: 2, After: "x", Upto: "y"}
	if err := st.AddAuditSeal(context.Background(), stale); !errors.Is(err, acme.ErrConflict) {
		t.Fatalf("a second seal 2: %v, want a conflict", err)
	}
	if rep := verify(t, st, Options{Key: key}); !rep.OK() || rep.Seals != 2 {
		t.Fatalf("report %+v (first %v)", rep, rep.First)
	}
}

// TestDeletedSeals: deleting the newest seal is noticed by the sealer
// that saw it (it stops instead of sealing the entries again) and by an
// anchor; deleting one in the middle by Verify alone.
func TestDeletedSeals(t *testing.T) {
	st, s, c, _ := sealedLog(t, nil)
	anchor := st.seals[0].Hash
	st.seals = nil
	c.t = c.t.Add(time.Minute)
	if _, err := s.Once(context.Background()); !errors.Is(err, ErrTampered) {
		t.Fatalf("Once after the seal was deleted: %v, want ErrTampered", err)
	}
	if len(st.seals) != 0 {
		t.Fatal("the sealer sealed again over deleted seals")
	}
	if rep := verify(t, st, Options{Anchors: map[int64]string{1: anchor}}); rep.OK() {
		t.Fatal("an anchored seal was deleted and Verify passed")
	}

	st2, s2, c2, _ := sealedLog(t, nil)
	for i := range 2 {
		c2.t = c2.t.Add(2 * time.Minute)
		st2.add(entryAt(c2.t.Add(-90*time.Second), 300+i))
		if n, err := s2.Once(context.Background()); n != 1 || err != nil {
			t.Fatalf("Once: %d, %v", n, err)
		}
	}
	st2.seals = append(st2.seals[:1], st2.seals[2:]...) // seal 2 of 3
	if rep := verify(t, st2, Options{}); rep.OK() || rep.First.Seal != 2 {
		t.Fatalf("middle seal deleted: %+v", rep.First)
	}
}

// TestStrippedMACs: clearing the MACs of a keyed chain (the hashes need
// no key) must not turn it back into a plain chain that passes a check
// made with the passphrase, also when the salt was deleted as well.
func TestStrippedMACs(t *testing.T) {
	key := testKey()
	st, _, _, _ := sealedLog(t, key)
	st.seals[0].MAC = ""
	if rep := verify(t, st, Options{}); !rep.OK() {
		t.Fatalf("plain check of the stripped chain: %v; without the passphrase it is a plain chain", rep.First)
	}
	for name, o := range map[string]Options{"key": {Key: key}, "salt-missing": {SaltMissing: true}} {
		if rep := verify(t, st, o); rep.OK() || rep.First.Kind != Broken || rep.First.Seal != 1 {
			t.Errorf("%s: MACs stripped, first problem %+v, want seal 1", name, rep.First)
		}
	}
}

// TestKeyingAQuietLog: a replica given the passphrase keys an unkeyed
// chain at once, with an empty seal if no entry is waiting, so a check
// with the passphrase passes without waiting for the next entry.
func TestKeyingAQuietLog(t *testing.T) {
	key := testKey()
	st, _, c, _ := sealedLog(t, nil)
	c.t = c.t.Add(2 * time.Minute) // the two young entries settle
	s := newSealer(st, c, key)
	if n, err := s.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once: %d, %v", n, err)
	}
	c.t = c.t.Add(time.Minute) // nothing new
	if n, err := s.Once(context.Background()); n != 0 || err != nil {
		t.Fatalf("Once on a keyed, quiet log: %d, %v; want no seal", n, err)
	}

	st, _, c, _ = sealedLog(t, nil)
	c.t = c.t.Add(2 * time.Minute)
	if n, err := newSealer(st, c, nil).Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once: %d, %v", n, err)
	}
	if rep := verify(t, st, Options{Key: key}); rep.OK() {
		t.Fatal("an unkeyed chain passed a check with the passphrase")
	}
	c.t = c.t.Add(time.Minute)
	if n, err := newSealer(st, c, key).Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("Once with the key on a quiet unkeyed log: %d, %v; want one empty keyed seal", n, err)
	}
	last := st.seals[len(st.seals)-1]
	if last.Count != 0 || last.MAC == "" {
		t.Fatalf("last seal %+v, want an empty keyed one", last)
	}
	if rep := verify(t, st, Options{Key: key}); !rep.OK() || rep.Unsealed != 0 {
		t.Fatalf("report %+v (first %v), want OK", rep, rep.First)
	}
}

// TestKeylessStandsDown: a replica without the key that meets a keyed
// chain stops asking for the lease, which would otherwise stay with it
// and leave the chain unsealed for as long as it runs.
func TestKeylessStandsDown(t *testing.T) {
	key := testKey()
	st, s1, c, _ := sealedLog(t, key)
	c.t = c.t.Add(2 * time.Minute)
	s2 := newSealer(st, c, nil)
	s2.Holder = "r2"
	st.lease = "r2"
	if _, err := s2.Once(context.Background()); err == nil {
		t.Fatal("keyless sealer on a keyed chain: no error")
	}
	st.lease = "" // r2's lease lapses
	if _, err := s2.Once(context.Background()); err == nil || st.lease != "" {
		t.Fatalf("second run of the keyless sealer: %v, lease %q; want it to stand down", err, st.lease)
	}
	if n, err := s1.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("the keyed replica after r2 stood down: %d, %v", n, err)
	}
}
