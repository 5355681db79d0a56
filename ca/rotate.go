package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/certmint/certmint/ca/kms"
)

// RotateOptions configure the rotations. Every field is optional.
type RotateOptions struct {
	// Passphrase decrypts the root key recorded in the database and
	// encrypts the new keys (CERTMINT_CA_PASSPHRASE).
	Passphrase []byte
	// Overlap is how long both roots are published before issuance
	// switches to the new root (RotateRoot; default 30 days, 0 switches
	// at once when Immediate).
	Overlap   time.Duration
	Immediate bool
	Now       func() time.Time
	// KMS, a pkcs11: URI, puts the new keys in that token (labels: its
	// object with the date, "-root" added for a root); default: where
	// the key being replaced is.
	KMS string
}

// RotateResult says what a rotation did.
type RotateResult struct {
	Issuer *IssuerRecord // the new intermediate
	Root   *IssuerRecord // the new root (RotateRoot)
	// CSR is set when the root key is offline: the new intermediate is
	// pending until `certmint ca import-intermediate` brings its
	// certificate.
	CSR []byte
}

// DefaultOverlap is how long a root rotation publishes both roots.
const DefaultOverlap = 30 * 24 * time.Hour

// ring is the issuer records with lookups.
type ring []IssuerRecord

func (r ring) find(id string) *IssuerRecord {
	for i := range r {
		if r[i].ID == id {
			return &r[i]
		}
	}
	return nil
}

func (r ring) activeIntermediate() *IssuerRecord {
	for i := range r {
		if r[i].Role == RoleIntermediate && r[i].State == StateActive {
			return &r[i]
		}
	}
	return nil
}

func (r ring) pending() *IssuerRecord {
	for i := range r {
		if r[i].Role == RoleIntermediate && r[i].State == StatePending {
			return &r[i]
		}
	}
	return nil
}

func parseRecordCert(rec *IssuerRecord) (*x509.Certificate, error) {
	block, _ := pem.Decode(rec.CertPEM)
	if block == nil {
		return nil, fmt.Errorf("ca: issuer %s has no certificate", rec.ID)
	}
	return x509.ParseCertificate(block.Bytes)
}

// keyMaker opens recorded keys and creates new ones next to them: in the
// same token as the key it replaces, else in the database.
type keyMaker struct {
	passphrase []byte
	kms        string // where new keys go instead of next to the old ones
	keys       keyOpener
}

func (k *keyMaker) open(rec *IssuerRecord) (crypto.Signer, error) {
	switch {
	case rec.KeyRef == KeyRefDB:
		s, _, err := decodeKey(rec.KeyPEM, k.passphrase)
		return s, err
	case rec.KeyRef == "":
		return nil, nil // offline
	default:
		s, _, err := k.keys.open(rec.KeyRef)
		return s, err
	}
}

// create makes a key like the one of like; label names it in a token.
func (k *keyMaker) create(like *IssuerRecord, label string) (crypto.Signer, IssuerRecord, error) {
	if k.kms != "" {
		target := &IssuerRecord{KeyRef: k.kms}
		root := like.Role == RoleRoot || strings.HasSuffix(label, "-root")
		if label = tokenLabel(target, time.Now()); root {
			label += "-root"
		}
		like = target
	}
	if strings.HasPrefix(like.KeyRef, "pkcs11:") {
		u, err := kms.ParseURI(like.KeyRef)
		if err != nil {
			return nil, IssuerRecord{}, err
		}
		t, err := k.keys.token(u)
		if err != nil {
			return nil, IssuerRecord{}, err
		}
		s, err := t.Generate(label)
		if err != nil {
			return nil, IssuerRecord{}, err
		}
		return s, IssuerRecord{KeyRef: u.WithObject(label).String()}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, IssuerRecord{}, fmt.Errorf("generate key: %w", err)
	}
	data, err := encodeKey(key, k.passphrase)
	if err != nil {
		return nil, IssuerRecord{}, err
	}
	return key, IssuerRecord{KeyRef: KeyRefDB, KeyPEM: data}, nil
}

// tokenLabel names a key made by a rotation: the old label with the date.
func tokenLabel(like *IssuerRecord, now time.Time) string {
	if u, err := kms.ParseURI(like.KeyRef); err == nil {
		base := u.Object
		if i := strings.LastIndex(base, "@"); i > 0 {
			base = base[:i]
		}
		return base + "@" + now.UTC().Format("20060102T150405")
	}
	return ""
}

// constraintsOf reads back the constraints certmint put into cert, so a
// rotated intermediate certifies what its predecessor did.
func constraintsOf(cert *x509.Certificate) NameConstraints {
	var n NameConstraints
	n.PermittedDNS = append(n.PermittedDNS, cert.PermittedDNSDomains...)
	for _, d := range cert.ExcludedDNSDomains {
		if d != "" {
			n.ExcludedDNS = append(n.ExcludedDNS, d)
		}
	}
	conv := func(nets []*net.IPNet, skipAll bool) []netip.Prefix {
		var out []netip.Prefix
		for _, in := range nets {
			ones, _ := in.Mask.Size()
			addr, ok := netip.AddrFromSlice(in.IP)
			if !ok || (skipAll && ones == 0) {
				continue
			}
			out = append(out, netip.PrefixFrom(addr.Unmap(), ones))
		}
		return out
	}
	n.PermittedIPs = conv(cert.PermittedIPRanges, false)
	n.ExcludedIPs = conv(cert.ExcludedIPRanges, true)
	return n
}

func newRecord(role Role, state State, parent string, key IssuerRecord, certDER, csr []byte, now time.Time) (IssuerRecord, error) {
	r := key
	r.Role, r.State, r.ParentID, r.CreatedAt = role, state, parent, now
	if certDER != nil {
		cert, err := x509.ParseCertificate(certDER)
		if err != nil {
			return r, err
		}
		r.ID, r.CertPEM = keyID(cert), certPEM(certDER)
	} else {
		block, _ := pem.Decode(csr)
		req, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return r, err
		}
		ski, err := subjectKeyID(req.PublicKey)
		if err != nil {
			return r, err
		}
		r.ID, r.CSRPEM = hex.EncodeToString(ski), csr
	}
	if role == RoleIntermediate {
		r.CRLName = r.ID
	}
	return r, nil
}

// rotatable returns the active intermediate, its certificate and its
// root, when a rotation may start: one intermediate is active and none is
// pending.
func rotatable(ctx context.Context, st IssuerStore) (old *IssuerRecord, oldCert *x509.Certificate, root *IssuerRecord, err error) {
	list, err := st.ListIssuers(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	recs := ring(list)
	if old = recs.activeIntermediate(); old == nil {
		return nil, nil, nil, badInput("no intermediate is active; finish the pending one with `certmint ca import-intermediate`")
	}
	if p := recs.pending(); p != nil {
		return nil, nil, nil, badInput("intermediate %s is already pending (from an earlier rotation); finish it first (import its certificate, or wait for its switch)", p.ID)
	}
	if oldCert, err = parseRecordCert(old); err != nil {
		return nil, nil, nil, err
	}
	if root = recs.find(old.ParentID); root == nil {
		return nil, nil, nil, fmt.Errorf("ca: the root of intermediate %s is not recorded", old.ID)
	}
	return old, oldCert, root, nil
}

// RotateIntermediate replaces the active intermediate. With the root key
// at hand the new intermediate, with the same name and constraints, is
// signed and becomes active at once; the old one retires (it keeps
// signing CRLs for what it issued). With an offline root it is pending,
// and the CSR is returned for the root to sign.
func RotateIntermediate(ctx context.Context, st IssuerStore, o RotateOptions) (*RotateResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	old, oldCert, root, err := rotatable(ctx, st)
	if err != nil {
		return nil, err
	}
	km := &keyMaker{passphrase: o.Passphrase, kms: o.KMS}
	defer km.keys.close()
	rootKey, err := km.open(root)
	if err != nil {
		return nil, fmt.Errorf("ca: open the root key (%s): %w", recordKeyLocation(root), err)
	}
	key, keyRec, err := km.create(old, tokenLabel(old, now))
	if err != nil {
		return nil, err
	}
	nc := constraintsOf(oldCert)
	res := &RotateResult{}
	var rec IssuerRecord
	var moves []IssuerMove
	if rootKey == nil {
		csr, err := newIntermediateCSR(oldCert.Subject.CommonName, key, nc, now)
		if err != nil {
			return nil, err
		}
		if rec, err = newRecord(RoleIntermediate, StatePending, root.ID, keyRec, nil, csr, now); err != nil {
			return nil, err
		}
		res.CSR = csr
	} else {
		rootCert, err := parseRecordCert(root)
		if err != nil {
			return nil, err
		}
		der, err := newIntermediateDER(oldCert.Subject.CommonName, key.Public(), nc, rootCert, rootKey, now)
		if err != nil {
			return nil, err
		}
		if rec, err = newRecord(RoleIntermediate, StateActive, root.ID, keyRec, der, nil, now); err != nil {
			return nil, err
		}
		moves = []IssuerMove{{ID: old.ID, From: StateActive, To: StateRetiring}}
	}
	if err := st.ChangeIssuers(ctx, []IssuerRecord{rec}, moves, nil); err != nil {
		return nil, err
	}
	res.Issuer = &rec
	return res, nil
}

// RotateRoot creates a new root and an intermediate under it. Both roots
// are published (BundlePEM) from now on; issuance stays on the old chain
// until the overlap ends (Tick switches it, or Switch earlier), when the
// old root leaves the bundle. The new root's key is made where the old
// root's is (the database, or its token), or where the intermediate's is
// when the old root is offline; rotating to a new offline root is not
// supported.
func RotateRoot(ctx context.Context, st IssuerStore, o RotateOptions) (*RotateResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Overlap == 0 && !o.Immediate {
		o.Overlap = DefaultOverlap
	}
	now := o.Now()
	old, oldCert, oldRoot, err := rotatable(ctx, st)
	if err != nil {
		return nil, err
	}
	oldRootCert, err := parseRecordCert(oldRoot)
	if err != nil {
		return nil, err
	}
	km := &keyMaker{passphrase: o.Passphrase, kms: o.KMS}
	defer km.keys.close()
	like, label := oldRoot, tokenLabel(oldRoot, now)
	if like.KeyRef == "" { // an offline root: the new root's key goes where the intermediate's is
		like, label = old, tokenLabel(old, now)+"-root"
	}
	rootKey, rootKeyRec, err := km.create(like, label)
	if err != nil {
		return nil, err
	}
	rootDER, err := newRootDER(oldRootCert.Subject.CommonName, rootKey, now)
	if err != nil {
		return nil, err
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	key, keyRec, err := km.create(old, tokenLabel(old, now))
	if err != nil {
		return nil, err
	}
	der, err := newIntermediateDER(oldCert.Subject.CommonName, key.Public(), constraintsOf(oldCert), rootCert, rootKey, now)
	if err != nil {
		return nil, err
	}
	newRoot, err := newRecord(RoleRoot, StateActive, "", rootKeyRec, rootDER, nil, now)
	if err != nil {
		return nil, err
	}
	inter, err := newRecord(RoleIntermediate, StatePending, newRoot.ID, keyRec, der, nil, now)
	if err != nil {
		return nil, err
	}
	at := now.Add(o.Overlap).UTC()
	inter.ActivateAt = &at
	if err := st.ChangeIssuers(ctx, []IssuerRecord{newRoot, inter}, nil, nil); err != nil {
		return nil, err
	}
	if o.Overlap == 0 {
		if err := Switch(ctx, st, inter.ID); err != nil {
			return nil, err
		}
	}
	return &RotateResult{Issuer: &inter, Root: &newRoot}, nil
}

// Switch makes the pending intermediate id, which has its certificate,
// the one issuing: the old intermediate retires, and when the new one is
// under another root, the old root retires too and leaves the bundle.
func Switch(ctx context.Context, st IssuerStore, id string) error {
	list, err := st.ListIssuers(ctx)
	if err != nil {
		return err
	}
	recs := ring(list)
	next := recs.find(id)
	if next == nil || next.State != StatePending || len(next.CertPEM) == 0 {
		return badInput("issuer %s is not a pending intermediate with a certificate", id)
	}
	moves := []IssuerMove{{ID: id, From: StatePending, To: StateActive}}
	if old := recs.activeIntermediate(); old != nil {
		moves = append(moves, IssuerMove{ID: old.ID, From: StateActive, To: StateRetiring})
		if old.ParentID != next.ParentID {
			moves = append(moves, IssuerMove{ID: old.ParentID, From: StateActive, To: StateRetiring})
		}
	}
	return st.ChangeIssuers(ctx, nil, moves, nil)
}

// ImportIssuerCert completes a pending intermediate with its certificate,
// signed by the offline root, after the same checks as `ca init`: the key
// of the CSR, a CA that may sign leaves, a chain to the recorded root, the
// constraints the CSR asked for. It then issues at once.
func ImportIssuerCert(ctx context.Context, st IssuerStore, certs []*x509.Certificate, file string, now time.Time) (*IssuerRecord, error) {
	list, err := st.ListIssuers(ctx)
	if err != nil {
		return nil, err
	}
	recs := ring(list)
	p := recs.pending()
	if p == nil || len(p.CertPEM) > 0 {
		return nil, badInput("no intermediate waits for its certificate; run `certmint ca rotate intermediate --csr-out FILE` first")
	}
	root := recs.find(p.ParentID)
	if root == nil {
		return nil, fmt.Errorf("ca: the root of pending intermediate %s is not recorded", p.ID)
	}
	rootCert, err := parseRecordCert(root)
	if err != nil {
		return nil, err
	}
	want, constrained, err := parseCSR(p.CSRPEM)
	if err != nil {
		return nil, err
	}
	inter := certs[0]
	if pub, ok := want.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(inter.PublicKey) {
		return nil, badInput("%s (%q) is for a different key than the pending CSR; sign that CSR (`certmint ca status` shows it)", file, inter.Subject.CommonName)
	}
	if err := checkIntermediate(inter, file, rootCert, now); err != nil {
		return nil, err
	}
	if constrained && len(chainConstraints(inter)) == 0 {
		return nil, badInput("%s (%q) lacks the name constraints the CSR asked for; sign the CSR so its extensions are copied (openssl: -copy_extensions copyall)", file, inter.Subject.CommonName)
	}
	moves := []IssuerMove{{ID: p.ID, From: StatePending, To: StateActive}}
	if old := recs.activeIntermediate(); old != nil {
		moves = append(moves, IssuerMove{ID: old.ID, From: StateActive, To: StateRetiring})
	}
	if err := st.ChangeIssuers(ctx, nil, moves, map[string][]byte{p.ID: certPEM(inter.Raw)}); err != nil {
		return nil, err
	}
	p.State, p.CertPEM = StateActive, certPEM(inter.Raw)
	return p, nil
}
