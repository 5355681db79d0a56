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
	"time"

	"github.com/certmint/certmint/storage"
)

// nonceKeySetting names the cluster-wide nonce MAC key in the settings table.
const nonceKeySetting = "acme.nonce-key"

// Nonces mints and redeems anti-replay nonces (RFC 8555 §6.5).
//
// A nonce is 8 bytes of issue time, 8 random bytes and a 16-byte MAC over
// both, under a key every replica reads from the database. Minting needs no
// database write, so every response can carry a fresh nonce for free; a
// nonce minted by any replica verifies on every other. Single use is
// enforced by the database: redeeming inserts the nonce into a table with
// a unique key, so exactly one redemption across all replicas succeeds.
type Nonces struct {
	key      []byte
	store    storage.NonceStore
	lifetime time.Duration
	now      func() time.Time
}

// NewNonces loads (or, on the first start of a cluster, creates) the MAC
// key from the settings store.
func NewNonces(ctx context.Context, settings storage.SettingStore, store storage.NonceStore, lifetime time.Duration, now func() time.Time) (*Nonces, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	stored, err := settings.InitSetting(ctx, nonceKeySetting, hex.EncodeToString(fresh))
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
	return &Nonces{key: key, store: store, lifetime: lifetime, now: now}, nil
}

const nonceRawLen = 8 + 8 + 16

// New mints a nonce.
func (n *Nonces) New() string {
	var b [nonceRawLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], n.mac(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *Nonces) mac(msg []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(msg)
	return m.Sum(nil)[:16]
}

// errNonce is the reason a nonce was refused; the caller answers badNonce.
var errNonce = errors.New("nonce refused")

// Redeem accepts nonce once. It fails with a badNonce problem if the nonce
// is malformed, forged, older than the lifetime, or was used before.
func (n *Nonces) Redeem(ctx context.Context, nonce string) error {
	if nonce == "" {
		return BadNonce("the JWS protected header has no nonce")
	}
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceRawLen || !hmac.Equal(b[16:], n.mac(b[:16])) {
		return BadNonce("the nonce was not issued by this server")
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	expires := issued.Add(n.lifetime)
	if n.now().After(expires) {
		return BadNonce("the nonce has expired; get a fresh one from newNonce")
	}
	if err := n.store.UseNonce(ctx, nonce, expires); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return BadNonce("the nonce was already used")
		}
		return storeError("nonce", err)
	}
	return nil
}
