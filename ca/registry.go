package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The issuers of a running CA live in the database, so that every replica
// signs with the same intermediate and a rotation made by the command
// line, the console or another replica reaches every server without files
// copied by hand. Key material travels with the record: a file key as its
// PEM (encrypted under CERTMINT_CA_PASSPHRASE when one is set, exactly as
// the key file on disk), a PKCS#11 key as its URI without PIN (each
// replica reaches the same token), an offline root as nothing at all.

// KeyRefDB says the record's KeyPEM holds the key.
const KeyRefDB = "db"

// LegacyCRLName is the CRL name of the first intermediate: its
// certificates carry the URL .../crl/intermediate.crl, which must keep
// working after a rotation.
const LegacyCRLName = "intermediate"

// ErrNoKey means a replica cannot reach the key of an issuer it must sign
// with: no or a wrong passphrase, a token it cannot open.
var ErrNoKey = errors.New("ca: cannot reach the active intermediate's key")

// IssuerRecord is an issuer as the database keeps it.
type IssuerRecord struct {
	ID         string // hex SKI of the issuer's key
	Role       Role
	State      State
	ParentID   string // an intermediate's root
	CertPEM    []byte // empty while pending for the offline root
	CSRPEM     []byte // a pending intermediate's request
	KeyRef     string // KeyRefDB, a pkcs11: URI, or "" (offline)
	KeyPEM     []byte // when KeyRef is KeyRefDB
	CRLName    string
	ActivateAt *time.Time
	CreatedAt  time.Time
}

// IssuerMove is a conditional state change: it applies only while the
// issuer is still in From, so two replicas cannot both move it.
type IssuerMove struct {
	ID       string
	From, To State
}

// IssuerStore keeps the issuers; storage implements it.
type IssuerStore interface {
	// ListIssuers returns every issuer, oldest first.
	ListIssuers(ctx context.Context) ([]IssuerRecord, error)
	// ChangeIssuers inserts add and applies moves (and sets the
	// certificate of a pending record in certs, by ID) in one
	// transaction; ErrIssuerConflict when a move found another state.
	ChangeIssuers(ctx context.Context, add []IssuerRecord, moves []IssuerMove, certs map[string][]byte) error
}

// ErrIssuerConflict means a conditional issuer change lost a race: another
// replica or the command line changed the issuers first.
var ErrIssuerConflict = errors.New("ca: the issuers changed meanwhile; try again")

// keyID is the issuer ID of a certificate.
func keyID(cert *x509.Certificate) string {
	if len(cert.SubjectKeyId) > 0 {
		return hex.EncodeToString(cert.SubjectKeyId)
	}
	ski, err := subjectKeyID(cert.PublicKey)
	if err != nil {
		sum := sha256.Sum256(cert.Raw)
		return hex.EncodeToString(sum[:20])
	}
	return hex.EncodeToString(ski)
}

// IssuerCRLURL is the CRL distribution point of iss given the configured
// --crl-url: its last path element becomes the issuer's CRL name.
func IssuerCRLURL(base string, iss *Issuer) string {
	if base == "" || iss == nil || iss.CRLName == "" || iss.CRLName == LegacyCRLName {
		return base
	}
	i := strings.LastIndex(base, "/")
	return base[:i+1] + iss.CRLName + ".crl"
}

// RecordsVersion is a fingerprint of what a CA built from recs would do:
// it changes with every state, certificate or switch time.
func RecordsVersion(recs []IssuerRecord) string {
	h := sha256.New()
	for _, r := range recs {
		at := ""
		if r.ActivateAt != nil {
			at = r.ActivateAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(h, "%s|%s|%s|%x|%s\n", r.ID, r.State, at, sha256.Sum256(r.CertPEM), r.KeyRef)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Records returns the issuers of a CA loaded from its directory, as the
// database records them the first time: the keys as their files are
// (encrypted or not), a token key as its URI, the first intermediate
// with the CRL name its certificates already carry.
func (c *CA) Records(dir string) ([]IssuerRecord, error) {
	ch := c.snap()
	var out []IssuerRecord
	now := c.now().UTC()
	for _, iss := range ch.issuers {
		r := IssuerRecord{ID: iss.ID, Role: iss.Role, State: iss.State, ParentID: iss.ParentID, CertPEM: iss.pem,
			CRLName: iss.CRLName, KeyRef: iss.KeyRef, CreatedAt: now}
		if iss.KeyRef != "" && !strings.HasPrefix(iss.KeyRef, "pkcs11:") && iss.KeyRef != KeyRefDB {
			data, err := os.ReadFile(filepath.Join(dir, filepath.Base(iss.KeyRef)))
			if err != nil {
				return nil, fmt.Errorf("ca: read the %s key: %w", iss.Role, err)
			}
			r.KeyRef, r.KeyPEM = KeyRefDB, data
		}
		out = append(out, r)
	}
	return out, nil
}

// Load builds a CA from the database's issuer records: the active
// intermediate (the one issuing) and its root, every other intermediate
// for chains and CRLs. ErrNoKey when the active intermediate's key cannot
// be reached.
func Load(opts Options, recs []IssuerRecord) (*CA, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &CA{keys: &keyOpener{dir: opts.Dir, passphrase: opts.Passphrase}, signers: map[string]crypto.Signer{},
		encrypted: true, now: opts.Now, log: opts.Logger}
	if err := c.Adopt(recs); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Adopt makes recs the CA's issuers, e.g. after a rotation made elsewhere.
// Keys already open are reused; a new intermediate's key is opened once.
// On error the CA keeps signing as before.
func (c *CA) Adopt(recs []IssuerRecord) error {
	ch := &chain{}
	var active *Issuer
	byID := map[string]*Issuer{}
	for _, r := range recs {
		iss := &Issuer{ID: r.ID, ParentID: r.ParentID, Role: r.Role, State: r.State, KeyRef: r.KeyRef,
			KeyLocation: recordKeyLocation(&r), CRLName: r.CRLName, ActivateAt: r.ActivateAt, CSR: r.CSRPEM}
		if len(r.CertPEM) > 0 {
			block, _ := pem.Decode(r.CertPEM)
			if block == nil {
				return fmt.Errorf("ca: issuer %s: no PEM certificate recorded", r.ID)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("ca: issuer %s: %w", r.ID, err)
			}
			iss.Cert, iss.pem = cert, certPEM(cert.Raw)
		}
		if iss.Role == RoleIntermediate && iss.Cert != nil && (iss.State == StateActive || iss.State == StateRetiring || iss.State == StatePending) {
			s, err := c.signerFor(r)
			switch {
			case err != nil && iss.State == StateActive:
				return fmt.Errorf("%w (%s): %v", ErrNoKey, iss.KeyLocation, err)
			case err != nil:
				c.log.Warn("cannot reach an intermediate's key; its CRL is not signed here", "issuer", iss.ID, "err", err)
			default:
				iss.signer = s
			}
		}
		if iss.Role == RoleIntermediate && iss.State == StateActive {
			if active != nil {
				return fmt.Errorf("ca: two active intermediates (%s and %s)", active.ID, iss.ID)
			}
			active = iss
		}
		byID[iss.ID] = iss
		ch.issuers = append(ch.issuers, iss)
	}
	if active == nil || active.Cert == nil {
		return fmt.Errorf("%w: no intermediate is active; finish the rotation with `certmint ca import-intermediate`", ErrPending)
	}
	root := byID[active.ParentID]
	if root == nil || root.Cert == nil {
		return fmt.Errorf("ca: the active intermediate's root %s is not recorded", active.ParentID)
	}
	if err := active.Cert.CheckSignatureFrom(root.Cert); err != nil {
		return fmt.Errorf("ca: the active intermediate is not signed by its root: %w", err)
	}
	// Roots first, then intermediates, each oldest first.
	slices.SortStableFunc(ch.issuers, func(a, b *Issuer) int { return strings.Compare(string(b.Role), string(a.Role)) })
	ch.root, ch.rootPEM = root.Cert, root.pem
	ch.inter, ch.interPEM, ch.signer = active.Cert, active.pem, active.signer
	ch.constraints = chainConstraints(active.Cert, root.Cert)
	ch.activeID = active.ID
	c.mu.Lock()
	c.ch, c.version = ch, RecordsVersion(recs)
	c.mu.Unlock()
	return nil
}

// Version is the RecordsVersion of the records adopted last; "" for a CA
// loaded from files only.
func (c *CA) Version() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// signerFor opens (once) the key of an intermediate record.
func (c *CA) signerFor(r IssuerRecord) (crypto.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.signers[r.ID]; ok {
		return s, nil
	}
	var s crypto.Signer
	var enc bool
	var err error
	switch {
	case r.KeyRef == KeyRefDB:
		s, enc, err = decodeKey(r.KeyPEM, c.keys.passphrase)
	case r.KeyRef == "":
		return nil, errors.New("the key is offline")
	default:
		s, enc, err = c.keys.open(r.KeyRef)
	}
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(r.CertPEM); block != nil {
		if cert, perr := x509.ParseCertificate(block.Bytes); perr == nil {
			if err := matchKey(cert, s); err != nil {
				return nil, err
			}
		}
	}
	c.encrypted = c.encrypted && enc
	c.signers[r.ID] = s
	return s, nil
}

// recordKeyLocation describes where a record's key is, for operators.
func recordKeyLocation(r *IssuerRecord) string {
	if r.KeyRef == KeyRefDB {
		if block, _ := pem.Decode(r.KeyPEM); block != nil && block.Type == pemTypeEncryptedKey {
			return "database, encrypted with CERTMINT_CA_PASSPHRASE"
		}
		return "database, not encrypted (set CERTMINT_CA_PASSPHRASE)"
	}
	return keyLocation(r.KeyRef)
}

func (ch *chain) find(id string) *Issuer {
	for _, iss := range ch.issuers {
		if iss.ID == id || (iss.Cert != nil && hex.EncodeToString(iss.Cert.SubjectKeyId) == id) {
			return iss
		}
	}
	return nil
}

func (ch *chain) active() *Issuer { return ch.find(ch.activeID) }

// Active returns the intermediate that signs new certificates.
func (c *CA) Active() *Issuer { return c.snap().active() }

// BundlePEM is every root clients should trust now: the active roots,
// which during a root rotation's overlap are the old and the new one.
func (c *CA) BundlePEM() []byte {
	var b bytes.Buffer
	for _, iss := range c.snap().issuers {
		if inBundle(iss) {
			b.Write(iss.pem)
		}
	}
	return b.Bytes()
}

// BundleRoots are the certificates of BundlePEM, in the same order.
func (c *CA) BundleRoots() []*x509.Certificate {
	var out []*x509.Certificate
	for _, iss := range c.snap().issuers {
		if inBundle(iss) {
			out = append(out, iss.Cert)
		}
	}
	return out
}

func inBundle(iss *Issuer) bool {
	return iss.Role == RoleRoot && iss.State == StateActive && iss.Cert != nil && iss.pem != nil
}

// BundleSequence numbers the versions of the bundle for consumers that
// poll it (the SPIFFE bundle's spiffe_sequence, which must grow whenever
// the contents change: SPIFFE Trust Domain and Bundle §4.1.1). A root
// joins the bundle once, when it is made, and leaves it once, when it
// stops being active, and is never deleted; so counting each root once
// and once more after it left gives a number that every change raises and
// that every replica computes alike from the same records.
func (c *CA) BundleSequence() uint64 {
	var n uint64
	for _, iss := range c.snap().issuers {
		if iss.Role != RoleRoot || iss.Cert == nil {
			continue
		}
		n++
		if iss.State != StateActive {
			n++
		}
	}
	return n
}

// KnowsIssuer reports whether ski is the key identifier of one of the
// CA's intermediates, current or past (RFC 9773 certificate identifiers).
func (c *CA) KnowsIssuer(ski []byte) bool {
	iss := c.snap().find(hex.EncodeToString(ski))
	return iss != nil && iss.Role == RoleIntermediate
}

// CRLIssuers are the intermediates whose CRLs are published: the active
// one and those retiring, which still answer for what they issued.
func (c *CA) CRLIssuers() []*Issuer {
	var out []*Issuer
	for _, iss := range c.snap().issuers {
		if iss.Role == RoleIntermediate && iss.signer != nil && (iss.State == StateActive || iss.State == StateRetiring) {
			out = append(out, iss)
		}
	}
	return out
}
