package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/storage"
)

// The CA's issuers live in the database (table ca_issuers). The first
// server to start on a database records the CA of its --data directory
// there, keys included (as their files are: encrypted under
// CERTMINT_CA_PASSPHRASE when it is set; a PKCS#11 key as its URI without
// PIN); from then on every server, replica or not, builds its CA from the
// database and follows rotations by polling it.

// defaultCAPoll is how often a server looks for a rotation made elsewhere.
const defaultCAPoll = 30 * time.Second

// openCAError turns what ca.Open reports into the operator's one line.
func openCAError(err error, data string) error {
	dir := filepath.Join(data, "ca")
	switch {
	case errors.Is(err, ca.ErrBadPassphrase):
		return usagef("the CA keys in %s are encrypted and CERTMINT_CA_PASSPHRASE is missing or wrong", dir)
	case errors.Is(err, ca.ErrInsecureKeyFile):
		return usagef("%v", err)
	case errors.Is(err, ca.ErrPending):
		return usagef("the CA in %s waits for its intermediate certificate: have the offline root sign %s, then run `certmint ca import-intermediate --data %s FILE`",
			dir, filepath.Join(dir, ca.IntermediateCSRFile), data)
	default:
		return usagef("cannot open the CA in %s: %v", dir, err)
	}
}

// recordIssuers returns the issuers recorded in the database. When there
// are none yet, it records the CA of data/ca (creating it first when
// create is true and the directory holds none), and assigns every
// certificate issued so far to its intermediate.
func recordIssuers(ctx context.Context, store storage.Store, data string, passphrase []byte, rootName string, create bool, log *slog.Logger) ([]ca.IssuerRecord, *ca.CA, error) {
	return recordIssuersOf(ctx, store, nil, data, passphrase, rootName, create, log)
}

// recordIssuersOf is recordIssuers with the CA of data/ca already open
// (nil: opened here when needed).
func recordIssuersOf(ctx context.Context, store storage.Store, authority *ca.CA, data string, passphrase []byte, rootName string, create bool, log *slog.Logger) ([]ca.IssuerRecord, *ca.CA, error) {
	recs, err := store.ListIssuers(ctx)
	if err != nil || len(recs) > 0 {
		return recs, authority, err
	}
	if authority != nil {
		return recordLocal(ctx, store, authority, data, log)
	}
	dir := filepath.Join(data, "ca")
	if !create {
		if _, err := os.Stat(filepath.Join(dir, ca.RootCertFile)); err != nil {
			if _, err := os.Stat(filepath.Join(dir, ca.ManifestFile)); err != nil {
				return nil, nil, usagef("no CA recorded in the database and none in %s: run `certmint serve` or `certmint ca init` first", dir)
			}
		}
	}
	authority, err = ca.Open(ca.Options{Dir: dir, Passphrase: passphrase, RootName: rootName, Logger: log})
	if err != nil {
		return nil, nil, openCAError(err, data)
	}
	return recordLocal(ctx, store, authority, data, log)
}

// recordLocal records the issuers of the CA opened from data/ca. It
// closes authority on failure.
func recordLocal(ctx context.Context, store storage.Store, authority *ca.CA, data string, log *slog.Logger) ([]ca.IssuerRecord, *ca.CA, error) {
	dir := filepath.Join(data, "ca")
	// Databases from before issuers were recorded name their root here.
	stored, err := store.InitSetting(ctx, "ca.root-sha256", authority.RootFingerprint())
	if err != nil {
		authority.Close()
		return nil, nil, fmt.Errorf("record the CA root in the database: %w", err)
	}
	if stored != authority.RootFingerprint() {
		authority.Close()
		return nil, nil, usagef("the database belongs to the CA with root SHA-256 %s, but %s holds root %s; every replica must use the same CA",
			stored, dir, authority.RootFingerprint())
	}
	recs, err := authority.Records(dir)
	if err != nil {
		authority.Close()
		return nil, nil, err
	}
	err = store.ChangeIssuers(ctx, recs, nil, nil)
	if errors.Is(err, ca.ErrIssuerConflict) { // another replica recorded them first
		authority.Close()
		recs, err = store.ListIssuers(ctx)
		return recs, nil, err
	}
	if err != nil {
		authority.Close()
		return nil, nil, err
	}
	if n, err := store.AssignIssuer(ctx, authority.Active().ID); err != nil {
		authority.Close()
		return nil, nil, err
	} else if n > 0 {
		log.Info("certificates assigned to the first intermediate", "certificates", n)
	}
	log.Info("CA issuers recorded in the database", "issuers", len(recs))
	return recs, authority, nil
}

// openLocalCA opens the CA files of data/ca when there are any, before
// the database is touched: a CA that cannot sign (an intermediate waiting
// for the offline root, a key file others may read, a token refusing its
// PIN) stops start-up with nothing written. nil when data/ca is empty.
func openLocalCA(o serveOptions, log *slog.Logger) (*ca.CA, error) {
	dir := filepath.Join(o.Data, "ca")
	has, err := ca.Holds(dir)
	if err != nil || !has {
		return nil, err
	}
	authority, err := ca.Open(ca.Options{Dir: dir, Passphrase: o.Passphrase, RootName: o.RootName, Logger: log})
	if err != nil {
		return nil, openCAError(err, o.Data)
	}
	return authority, nil
}

// openAuthority opens the CA a server signs with: from the database's
// issuer records, after recording those of --data on the first start.
// A server that cannot reach the active intermediate's key is refused.
func openAuthority(ctx context.Context, o serveOptions, store storage.Store, local *ca.CA, log *slog.Logger) (*ca.CA, error) {
	recs, fromFiles, err := recordIssuersOf(ctx, store, local, o.Data, o.Passphrase, o.RootName, true, log)
	if err != nil {
		return nil, err
	}
	if fromFiles != nil {
		fromFiles.Close()
	}
	if err := checkLocalRoot(o.Data, recs); err != nil {
		return nil, err
	}
	if isPostgres(o.DB) {
		for _, r := range recs {
			if r.KeyRef == ca.KeyRefDB && !strings.Contains(string(r.KeyPEM), "ENCRYPTED") {
				log.Warn("CA keys are stored unencrypted in the database; set CERTMINT_CA_PASSPHRASE so a dump holds no usable key",
					"issuer", r.ID, "role", r.Role)
				break
			}
		}
	}
	authority, err := ca.Load(ca.Options{Dir: filepath.Join(o.Data, "ca"), Passphrase: o.Passphrase, Logger: log}, recs)
	switch {
	case errors.Is(err, ca.ErrNoKey):
		return nil, usagef("%v; give this server the CA's CERTMINT_CA_PASSPHRASE (and its PKCS#11 token and PIN, if the key is there)", err)
	case errors.Is(err, ca.ErrPending):
		return nil, usagef("%v", err)
	case err != nil:
		return nil, usagef("cannot load the CA from the database: %v", err)
	}
	return authority, nil
}

// checkLocalRoot refuses a data directory holding a CA whose root the
// database does not know: a replica pointed at the wrong database.
func checkLocalRoot(data string, recs []ca.IssuerRecord) error {
	path := filepath.Join(data, "ca", ca.RootCertFile)
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil
	}
	local := fingerprint(block.Bytes)
	for _, r := range recs {
		if b, _ := pem.Decode(r.CertPEM); b != nil && r.Role == ca.RoleRoot && fingerprint(b.Bytes) == local {
			return nil
		}
	}
	return usagef("%s holds root SHA-256 %s, which the database's CA does not know; point --db at this CA's database, or move %s away (the CA comes from the database)",
		path, local, filepath.Join(data, "ca"))
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// issuerWatch keeps a server's CA in line with the database: it adopts
// rotations made elsewhere and, on one replica at a time, runs ca.Tick
// (switches at the end of an overlap, automatic renewal).
type issuerWatch struct {
	app     *app
	poll    time.Duration
	warning atomic.Value // string: the offline-root warning for the console
}

func (w *issuerWatch) run(ctx context.Context) {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		w.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *issuerWatch) once(ctx context.Context) {
	a := w.app
	now := time.Now()
	if ok, err := a.store.AcquireLease(ctx, "ca-issuers", a.holder, now, 2*w.poll+10*time.Second); err == nil && ok {
		res, err := ca.Tick(ctx, a.store, ca.TickOptions{RotateOptions: ca.RotateOptions{Passphrase: a.opts.Passphrase},
			LongestValidity: longestValidity(a.opts)})
		switch {
		case err != nil:
			a.log.Warn("CA housekeeping failed", "err", err)
		case res.Renewed != "":
			a.log.Info("intermediate renewed automatically: new certificates come from the new intermediate", "issuer", res.Renewed)
		case res.Switched != "":
			a.log.Info("issuance switched to the new chain", "issuer", res.Switched)
		}
		if res.Warning != "" && w.warning.Load() != res.Warning {
			a.log.Warn(res.Warning)
		}
		w.warning.Store(res.Warning)
	}
	recs, err := a.store.ListIssuers(ctx)
	if err != nil {
		a.log.Warn("cannot read the CA issuers", "err", err)
		return
	}
	if ca.RecordsVersion(recs) == a.ca.Version() {
		return
	}
	if err := a.ca.Adopt(recs); err != nil {
		a.log.Error("cannot use the CA issuers changed in the database; signing as before", "err", err)
		return
	}
	act := a.ca.Active()
	a.log.Info("CA issuers changed: signing with", "issuer", act.ID, "subject", act.Cert.Subject.CommonName, "not_after", act.Cert.NotAfter)
	a.crl.Notify()
}

// Warning is the offline-root warning, or "".
func (w *issuerWatch) Warning() string {
	s, _ := w.warning.Load().(string)
	return s
}

// longestValidity is the longest lifetime a leaf may get: the longest
// profile, or --max-validity when that is shorter.
func longestValidity(o serveOptions) time.Duration {
	var longest time.Duration
	for _, p := range o.Profiles {
		longest = max(longest, p.Validity)
	}
	if o.MaxValidity > 0 && o.MaxValidity < longest {
		longest = o.MaxValidity
	}
	return longest
}
