package acme

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// NonceKeySetting names the cluster-wide nonce MAC key in the settings
// table. A restore replaces it, which voids every nonce handed out before.
const NonceKeySetting = "acme.nonce-key"

// Nonces mints and redeems anti-replay nonces (RFC 8555 §6.5).
//
// A nonce is 8 bytes of issue time, 8 bytes of sequence, and a 16-byte MAC
// over both under a key every replica reads from the database, so minting
// costs no database write and every response carries a fresh nonce.
// Single use is enforced in one of two ways:
//
//   - shared (Postgres, any number of replicas): redeeming inserts the nonce
//     into a table with a unique key, so exactly one redemption across all
//     replicas succeeds, whichever replica minted it;
//   - local (the embedded SQLite database, one process): the sequence
//     indexes a ring of bits in memory. The sequence starts from a random
//     value at each start, and nonces older than the start are refused,
//     so a restart cannot make a used nonce valid again.
type Nonces struct {
	key      []byte
	store    NonceStore
	lifetime time.Duration
	now      func() time.Time
	local    *nonceRing // nil when shared
}

// NewNonces loads (or, on the first start of a cluster, creates) the MAC
// key from the settings store. shared selects database-enforced single use.
func NewNonces(ctx context.Context, store NonceStore, lifetime time.Duration, now func() time.Time, shared bool) (*Nonces, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	stored, err := store.InitSetting(ctx, NonceKeySetting, hex.EncodeToString(fresh))
	if err != nil {
		return nil, fmt.Errorf("load nonce key: %w", err)
	}
	key, err := hex.DecodeString(stored)
	if err != nil || len(key) < 16 {
		return nil, errors.New("load nonce key: stored key is corrupt")
	}
	if now == nil {
		now = time.Now
	}
	n := &Nonces{key: key, store: store, lifetime: lifetime, now: now}
	if !shared {
		n.local = newNonceRing(now())
	}
	return n, nil
}

const nonceRawLen = 8 + 8 + 16

// New mints a nonce.
func (n *Nonces) New() string {
	var b [nonceRawLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	if n.local != nil {
		binary.BigEndian.PutUint64(b[8:16], n.local.next())
	} else {
		_, _ = rand.Read(b[8:16])
	}
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:16])
	var sum [sha256.Size]byte
	copy(b[16:], m.Sum(sum[:0]))
	var out [43]byte
	base64.RawURLEncoding.Encode(out[:], b[:nonceRawLen])
	return string(out[:])
}

// Redeem accepts nonce once. It fails with a badNonce problem if the nonce
// is malformed, forged, older than the lifetime, or was used before.
func (n *Nonces) Redeem(ctx context.Context, nonce string) error {
	if nonce == "" {
		return BadNonce("the JWS protected header has no nonce")
	}
	var b [nonceRawLen + 2]byte
	if len(nonce) != 43 {
		return BadNonce("the nonce was not issued by this server")
	}
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil {
		return BadNonce("the nonce was not issued by this server")
	}
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:16])
	var sum [sha256.Size]byte
	if !hmac.Equal(b[16:nonceRawLen], m.Sum(sum[:0])[:16]) {
		return BadNonce("the nonce was not issued by this server")
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	expires := issued.Add(n.lifetime)
	if n.now().After(expires) {
		return BadNonce("the nonce has expired; get a fresh one from newNonce")
	}
	if n.local != nil {
		return n.local.redeem(issued, binary.BigEndian.Uint64(b[8:16]))
	}
	if err := n.store.UseNonce(ctx, nonce, expires); err != nil {
		if errors.Is(err, ErrConflict) {
			return BadNonce("the nonce was already used")
		}
		return storeError("nonce", err)
	}
	return nil
}

// nonceRingBits is how many recent nonces the local mode tracks: at 4,000
// nonces a second that is over 15 minutes; older ones are refused as
// expired. 4 Mi bits is 512 KiB of memory.
const nonceRingBits = 1 << 22

// nonceRing is an anti-replay window (as in IPsec): one bit per sequence
// number in a ring, set when the nonce is used and cleared when the
// sequence number is minted again a lap later. Lock-free: every operation
// is an atomic word update.
type nonceRing struct {
	started time.Time
	first   uint64 // first sequence number of this process
	seq     atomic.Uint64
	words   []atomic.Uint64
}

func newNonceRing(now time.Time) *nonceRing {
	var b [8]byte
	_, _ = rand.Read(b[:])
	first := binary.BigEndian.Uint64(b[:]) >> 2 // room to count without wrapping
	r := &nonceRing{started: now, first: first, words: make([]atomic.Uint64, nonceRingBits/64)}
	r.seq.Store(first)
	return r
}

// next returns a fresh sequence number and clears its bit.
func (r *nonceRing) next() uint64 {
	s := r.seq.Add(1)
	r.words[(s/64)%uint64(len(r.words))].And(^(uint64(1) << (s % 64)))
	return s
}

func (r *nonceRing) redeem(issued time.Time, s uint64) error {
	cur := r.seq.Load()
	switch {
	case issued.Before(r.started) || s <= r.first || s > cur:
		return BadNonce("the nonce is from before the server restarted; get a fresh one from newNonce")
	case cur-s >= nonceRingBits-64:
		return BadNonce("the nonce has expired; get a fresh one from newNonce")
	}
	mask := uint64(1) << (s % 64)
	if old := r.words[(s/64)%uint64(len(r.words))].Or(mask); old&mask != 0 {
		return BadNonce("the nonce was already used")
	}
	// Minting may have lapped the ring meanwhile; then the bit just set
	// belongs to a newer nonce: refuse rather than guess.
	if r.seq.Load()-s >= nonceRingBits-64 {
		return BadNonce("the nonce has expired; get a fresh one from newNonce")
	}
	return nil
}
