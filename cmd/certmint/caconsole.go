package main

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/storage"
)

// consoleCA carries out the console CA page's actions against the
// database with the server's passphrase, then makes this server adopt
// the change at once (the others follow at their next poll).
type consoleCA struct{ a *app }

func (c consoleCA) opts() ca.RotateOptions {
	return ca.RotateOptions{Passphrase: c.a.opts.Passphrase}
}

func (c consoleCA) Issuers(ctx context.Context) ([]ca.IssuerRecord, error) {
	return c.a.store.ListIssuers(ctx)
}

func (c consoleCA) RotateIntermediate(ctx context.Context) (*ca.RotateResult, error) {
	res, err := ca.RotateIntermediate(ctx, c.a.store, c.opts())
	c.a.issuers.once(ctx)
	return res, err
}

func (c consoleCA) RotateRoot(ctx context.Context, overlap time.Duration) (*ca.RotateResult, error) {
	o := c.opts()
	o.Overlap, o.Immediate = overlap, overlap == 0
	res, err := ca.RotateRoot(ctx, c.a.store, o)
	c.a.issuers.once(ctx)
	return res, err
}

func (c consoleCA) Switch(ctx context.Context, id string) error {
	err := ca.Switch(ctx, c.a.store, id)
	c.a.issuers.once(ctx)
	return err
}

func (c consoleCA) Import(ctx context.Context, certs []*x509.Certificate) (*ca.IssuerRecord, error) {
	rec, err := ca.ImportIssuerCert(ctx, c.a.store, certs, "the certificate", time.Now())
	c.a.issuers.once(ctx)
	return rec, err
}

func (c consoleCA) BundleFetches(ctx context.Context) ([]storage.BundleFetch, error) {
	return c.a.store.ListBundleFetches(ctx, 200)
}

func (c consoleCA) Warning() string { return c.a.issuers.Warning() }

func (c consoleCA) CRLURL() string { return c.a.opts.CRLURL }

// recordBundleFetch notes an agent's fetch of /roots/bundle.pem with the
// roots it was served.
func (a *app) recordBundleFetch(ctx context.Context, accountID, remoteAddr string) {
	var fps []string
	for _, c := range parseCerts(a.ca.BundlePEM()) {
		fps = append(fps, fingerprint(c.Raw))
	}
	err := a.store.RecordBundleFetch(ctx, storage.BundleFetch{AccountID: accountID, FetchedAt: time.Now(), RemoteAddr: remoteAddr, Roots: fps})
	if err != nil {
		a.log.Warn("cannot record a bundle fetch", "account", accountID, "err", err)
	}
}
