// Package auditchain makes certmint's audit log tamper-evident: a sealer
// binds the entries, in ID order, into a hash chain of seals, and Verify
// recomputes the chain and names the first entry that was changed,
// deleted or inserted since it was sealed (docs/audit.md).
//
// A seal covers the entries whose IDs lie in (After, Upto] and records,
// for each of them, its ID and a digest of its fields. Its hash covers
// all of that and the previous seal's hash, so rewriting one seal means
// rewriting every later one. A single hash per seal would only say "this
// range broke"; the per-entry list is what lets Verify name the entry: a
// listed entry whose digest differs was changed, a listed entry that is
// gone was deleted, and an entry in the range that is not listed was
// inserted.
//
// What this detects and what it cannot: anyone who can write the
// database can also rewrite the seals consistently, or delete the newest
// seals and let the sealer seal their edited entries again. A keyed
// chain (an HMAC over each seal under a key derived from
// CERTMINT_CA_PASSPHRASE) stops the first for someone without the
// passphrase; only an anchor kept outside the database (the seal hashes
// the sealer logs, or one written down and given to `audit verify
// --anchor`) stops the second.
package auditchain

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/certmint/certmint/internal/audit"
)

// Seal is one link of the chain, as stored.
type Seal struct {
	Seq      int64 // 1, 2, 3 ...: unique, so two sealers cannot fork the chain
	SealedAt time.Time
	After    string // the previous seal's Upto ("" for the first seal)
	Upto     string // entries with After < ID <= Upto are covered
	Count    int
	Digests  string // "ID DIGEST\n" per covered entry, in ID order
	Hash     string // hex SHA-256 over the fields above and the previous hash
	MAC      string // hex HMAC-SHA256 of Hash under the seal key; "" when unkeyed
}

// Listed is one line of Seal.Digests.
type Listed struct {
	ID     string
	Digest string
}

// digestLen is the length of an entry digest in bytes: 128 bits of
// SHA-256 keep second preimages out of reach and the seal small.
const digestLen = 16

// EntryDigest is the digest of one audit entry: every field, each with
// its length first so no two entries encode alike. Times are written in
// UTC to the microsecond, the precision both engines store, so a log
// moved between SQLite and Postgres digests the same.
func EntryDigest(e audit.Event) string {
	h := sha256.New()
	w := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	w("certmint-audit-entry-v1")
	for _, f := range []string{e.ID, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr} {
		w(f)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:digestLen])
}

// FormatDigests lists entries, in the order given, as Seal.Digests.
func FormatDigests(entries []audit.Event) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.ID)
		b.WriteByte(' ')
		b.WriteString(EntryDigest(e))
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseDigests reads Seal.Digests back.
func ParseDigests(s string) ([]Listed, error) {
	var out []Listed
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		id, d, ok := strings.Cut(sc.Text(), " ")
		if !ok || id == "" || d == "" {
			return nil, fmt.Errorf("line %d of the entry list is malformed", len(out)+1)
		}
		out = append(out, Listed{ID: id, Digest: d})
	}
	return out, sc.Err()
}

// genesis is the "previous hash" of the first seal.
const genesis = "certmint-audit-chain-v1"

// SealHash is the chain hash of s after the seal whose hash is prev
// ("" before the first seal).
func SealHash(s Seal, prev string) string {
	if prev == "" {
		prev = genesis
	}
	h := sha256.New()
	d := sha256.Sum256([]byte(s.Digests))
	fmt.Fprintf(h, "certmint-audit-seal-v1\n%d\n%s\n%s\n%q\n%q\n%d\n%x\n",
		s.Seq, prev, s.SealedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), s.After, s.Upto, s.Count, d)
	return hex.EncodeToString(h.Sum(nil))
}

// SealMAC is the HMAC of a seal's hash under key.
func SealMAC(key []byte, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// SaltSetting is the settings key of the seal key's salt, one per
// database so that one passphrase gives different keys in different
// installations.
const SaltSetting = "audit_seal_salt"

// DeriveKey turns the CA passphrase into the seal key with Argon2id at
// the cost of the CA's key files (RFC 9106 §4, second option). A fast
// derivation would hand whoever reads the seals an offline test of
// passphrase guesses far cheaper than attacking the key files.
func DeriveKey(passphrase, salt []byte) []byte {
	return argon2.IDKey(passphrase, append([]byte("certmint-audit-seal-key-v1|"), salt...), 3, 64*1024, 4, 32)
}

// Settings is the settings table, where the salt lives.
type Settings interface {
	GetSetting(ctx context.Context, key string) (string, error)
	InitSetting(ctx context.Context, key, value string) (string, error)
}

// ServerKey derives the seal key of the database from passphrase,
// creating its salt on first use (whichever replica is first, wins).
func ServerKey(ctx context.Context, st Settings, passphrase []byte) ([]byte, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	v, err := st.InitSetting(ctx, SaltSetting, hex.EncodeToString(salt))
	if err != nil {
		return nil, fmt.Errorf("audit seal key: %w", err)
	}
	return keyFromSalt(passphrase, v)
}

// VerifyKey derives the seal key for checking: the salt must exist
// (ErrNotFound otherwise, as no keyed seal can have been made).
func VerifyKey(ctx context.Context, st Settings, passphrase []byte) ([]byte, error) {
	v, err := st.GetSetting(ctx, SaltSetting)
	if err != nil {
		return nil, fmt.Errorf("audit seal key: %w", err)
	}
	return keyFromSalt(passphrase, v)
}

func keyFromSalt(passphrase []byte, v string) ([]byte, error) {
	salt, err := hex.DecodeString(v)
	if err != nil || len(salt) < 16 {
		return nil, fmt.Errorf("audit seal key: the salt in setting %s is malformed", SaltSetting)
	}
	return DeriveKey(passphrase, salt), nil
}
