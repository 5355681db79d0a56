package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/certmint/certmint/storage"
	"github.com/certmint/certmint/web"
)

// initialPasswordFile is where the first admin password is written, once.
const initialPasswordFile = "initial-admin-password"

// ensureAdmin creates the console's first user, "admin", when the
// database has no console user yet. Its random password is printed once
// on stderr (never to the log) and written to DATA/initial-admin-password
// with mode 0600. Replicas starting together race on the unique user
// name; the loser does nothing.
func ensureAdmin(ctx context.Context, store storage.Store, dataDir string, log *slog.Logger) error {
	n, err := store.CountAdminUsers(ctx)
	if err != nil {
		return fmt.Errorf("check console users: %w", err)
	}
	if n > 0 {
		return nil
	}
	password := randomPassword()
	hash, err := web.HashPassword(password)
	if err != nil {
		return err
	}
	err = store.CreateAdminUser(ctx, &storage.AdminUser{Username: "admin", PasswordHash: hash})
	if errors.Is(err, storage.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the admin user: %w", err)
	}
	path := filepath.Join(dataDir, initialPasswordFile)
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "certmint: created console user \"admin\" with password %s (also in %s; change it with `certmint admin user passwd admin`)\n", password, path)
	log.Info("console user created", "user", "admin", "password_file", path)
	return nil
}

// randomPassword is 20 characters from an alphabet without look-alikes
// (about 110 bits).
func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	return randomFrom(alphabet, 20)
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		_, _ = rand.Read(buf)
		if int(buf[0]) < 256-256%len(alphabet) { // no modulo bias
			b[i] = alphabet[int(buf[0])%len(alphabet)]
			i++
		}
	}
	return string(b)
}

// adminHandler is the console, served on --admin-listen.
func (a *app) adminHandler() http.Handler {
	h, err := web.New(web.Config{
		Store:            a.store,
		CA:               a.ca,
		ACMEDirectoryURL: a.directoryURL(),
		RootFile:         a.rootFile(),
		HTTP01Port:       a.opts.HTTP01Port,
		Settings:         a.consoleSettings(),
		Version:          version,
		Logger:           a.log,
		OnRevoke:         a.crl.Notify,
		OIDC:             a.opts.Console.OIDC,
		NoLocalLogin:     !a.opts.Console.LocalLogin,
		LongestValidity:  a.longestValidity(),
		CAOps:            consoleCA{a},
		AuditKey:         a.sealing.Key,
		TrustDomain:      a.opts.TrustDomain,
	})
	if err != nil {
		// Templates and assets are embedded, so this is a build defect;
		// keep ACME running and say why the console answers 503.
		a.log.Error("admin console unavailable", "err", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the admin console failed to start; see the server log", http.StatusServiceUnavailable)
		})
	}
	return h
}

// directoryURL is the ACME directory as clients reach it (clientURL).
func (a *app) directoryURL() string {
	return clientURL("https", a.ln.ACME, a.opts.Hostnames) + "/acme/directory"
}

// longestValidity is the longest lifetime a certificate can get: the
// longest profile, capped by --max-validity. The dashboard's expiry
// timeline spans it.
func (a *app) longestValidity() time.Duration {
	var d time.Duration
	for _, p := range a.opts.Profiles {
		d = max(d, p.Validity)
	}
	if m := a.opts.MaxValidity; m > 0 && m < d {
		d = m
	}
	return d
}
func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
