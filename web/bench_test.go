package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

const benchCerts = 100_000

var (
	benchOnce  sync.Once
	benchStore storage.Store
	benchErr   error
	benchDir   string
)

// benchCertRow is the part of the certificates table the bulk insert
// fills (package storage keeps its row types to itself); the other columns
// take their zero values, as for a certificate the store wrote.
type benchCertRow struct {
	ID, Serial, AccountID, OrderID, Names, CommonName string
	NotBefore, NotAfter, CreatedAt                    time.Time
	DER                                               []byte `gorm:"column:der"`
	ChainPEM                                          string
	Revoked, RenewNow                                 bool
}

func (benchCertRow) TableName() string { return "certificates" }

// seedBench fills one SQLite store with benchCerts certificates, once per
// run, with batched inserts straight through the store's gorm handle.
func seedBench(b *testing.B) storage.Store {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certmint-web-bench-")
		if benchErr = err; err != nil {
			return
		}
		benchDir = dir // removed by TestMain
		path := filepath.Join(dir, "bench.db")
		benchStore, benchErr = storage.Open(context.Background(), path, storage.Options{})
		if benchErr != nil {
			return
		}
		// Bulk rows go in through a second connection to the same file:
		// the Store has no bulk import, and needs none.
		db, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: path + "?_pragma=busy_timeout(10000)&_time_format=sqlite"}), &gorm.Config{Logger: logger.Discard})
		if benchErr = err; err != nil {
			return
		}
		defer func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		}()
		now := time.Now().UTC()
		der := seedCert(b, benchStore, "seed.example.test", now.Add(90*24*time.Hour)).DER
		batch := make([]benchCertRow, 0, 1000)
		for i := range benchCerts {
			id := acme.NewID()
			name := fmt.Sprintf("svc-%06d.fleet.internal", i)
			batch = append(batch, benchCertRow{ID: id, Serial: fmt.Sprintf("%032x", i+1), AccountID: fmt.Sprintf("acct%04d", i%500),
				OrderID: "o" + id, Names: name, CommonName: name, NotBefore: now.Add(-time.Duration(i%90) * 24 * time.Hour),
				NotAfter: now.Add(time.Duration(i%120-20) * 24 * time.Hour), DER: der, ChainPEM: "-", Revoked: i%50 == 0,
				CreatedAt: now.Add(-time.Duration(i%90) * 24 * time.Hour)})
			if len(batch) == cap(batch) {
				if benchErr = db.Transaction(func(tx *gorm.DB) error { return tx.CreateInBatches(batch, 200).Error }); benchErr != nil {
					return
				}
				batch = batch[:0]
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func benchPage(b *testing.B, path string) {
	st := seedBench(b)
	srv, err := newServer(Config{Store: st, CA: sharedCA(b), ACMEDirectoryURL: "https://acme.test/acme/directory"})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.routes()
	// A session is only as good as its user (roles, issue 20).
	if err := st.CreateAdminUser(context.Background(), &storage.AdminUser{Username: "admin", PasswordHash: "-", Role: "admin"}); err != nil && !errors.Is(err, storage.ErrConflict) {
		b.Fatal(err)
	}
	se := &storage.Session{TokenHash: hashToken("bench-token"), Username: "admin", CSRFToken: "c", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(context.Background(), se); err != nil && !errors.Is(err, storage.ErrConflict) {
		b.Fatal(err)
	}
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "bench-token"})
		return r
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req())
	if w.Code != 200 {
		b.Fatalf("GET %s: %d", path, w.Code)
	}
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req())
		_, _ = io.Copy(io.Discard, w.Body)
	}
}

// BenchmarkCertificateList measures the console's certificate pages with
// 100,000 certificates in SQLite: first page, a deep keyset page, a state
// filter, and searches by name and serial.
func BenchmarkCertificateList(b *testing.B) {
	b.Run("list", func(b *testing.B) { benchPage(b, "/certificates") })
	b.Run("list-expiring", func(b *testing.B) { benchPage(b, "/certificates?state=expiring") })
	b.Run("search-name", func(b *testing.B) { benchPage(b, "/certificates?q=svc-099999") })
	b.Run("search-serial", func(b *testing.B) { benchPage(b, fmt.Sprintf("/certificates?q=%032x", 4242)) })
	b.Run("dashboard", func(b *testing.B) { benchPage(b, "/") })
}
