package web

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/certmint/certmint/storage"
)

const benchLineages = 30_000

// benchLineageRow is the part of the lineages table the bulk insert fills
// (storage keeps its row types to itself).
type benchLineageRow struct {
	ID, AccountID, NamesHash, Names, CertificateID, Serial, ARIID, Profile string
	IssuedAt, NotAfter, WindowStart, WindowEnd                             time.Time
	Renewals                                                               int
	LastRenewalAt                                                          *time.Time
	Revoked, OverdueNotified                                               bool
}

func (benchLineageRow) TableName() string { return "lineages" }

var lineageOnce sync.Once

// seedLineages adds benchLineages lineages over seedBench's 100,000
// certificates (3.3 certificates per lineage), in every state: lineage i
// was issued i%100 days ago for 90 days, with its window 60-75 days in,
// so 60% are healthy, 15% due, 15% overdue and 10% expired; every 50th
// is revoked.
func seedLineages(b *testing.B) {
	seedBench(b)
	lineageOnce.Do(func() {
		db, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: benchDir + "/bench.db?_pragma=busy_timeout(10000)&_time_format=sqlite"}),
			&gorm.Config{Logger: logger.Discard})
		if benchErr = err; err != nil {
			return
		}
		defer func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		}()
		var certIDs []string
		if benchErr = db.Table("certificates").Where("id NOT IN (SELECT certificate_id FROM lineages)").Order("id").Limit(benchLineages).Pluck("id", &certIDs).Error; benchErr != nil {
			return
		}
		now := time.Now().UTC()
		batch := make([]benchLineageRow, 0, 1000)
		for i, id := range certIDs {
			nb := now.Add(-time.Duration(i%100)*24*time.Hour - time.Hour)
			last := nb
			name := fmt.Sprintf("svc-%06d.fleet.internal", i)
			batch = append(batch, benchLineageRow{ID: fmt.Sprintf("l%09d", i), AccountID: fmt.Sprintf("acct%04d", i%500),
				NamesHash: fmt.Sprintf("%064x", i), Names: name, CertificateID: id, Serial: fmt.Sprintf("%032x", i+1),
				IssuedAt: nb, NotAfter: nb.Add(90 * 24 * time.Hour), WindowStart: nb.Add(60 * 24 * time.Hour),
				WindowEnd: nb.Add(75 * 24 * time.Hour), Renewals: 2, LastRenewalAt: &last, Revoked: i%50 == 0, OverdueNotified: true})
			if len(batch) == cap(batch) || i == len(certIDs)-1 {
				if benchErr = db.Transaction(func(tx *gorm.DB) error { return tx.CreateInBatches(batch, 200).Error }); benchErr != nil {
					return
				}
				batch = batch[:0]
			}
		}
		var n int64
		if n, benchErr = benchStore.CountLineages(context.Background(), storage.LineageFilter{}); benchErr == nil && n < benchLineages {
			benchErr = fmt.Errorf("seeded %d lineages, want %d", n, benchLineages)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

// BenchmarkInventory measures /inventory with 100,000 certificates in
// 30,000 lineages on SQLite: the first page, a deep keyset page, each
// state filter with its count, a name search, and the dashboard with its
// overdue tile. `make bench-inventory` runs it; BENCHMARKS.md has figures.
func BenchmarkInventory(b *testing.B) {
	seedLineages(b)
	for _, c := range []struct{ name, path string }{
		{"first-page", "/inventory"},
		{"deep-page", "/inventory?after=l000015000"},
		{"overdue", "/inventory?state=overdue"},
		{"due", "/inventory?state=due"},
		{"healthy", "/inventory?state=healthy"},
		{"expired", "/inventory?state=expired"},
		{"revoked", "/inventory?state=revoked"},
		{"name", "/inventory?name=svc-02999"},
		{"name-glob-overdue", "/inventory?state=overdue&name=svc-0*.fleet"},
		{"dashboard", "/"},
	} {
		b.Run(c.name, func(b *testing.B) { benchPage(b, c.path) })
	}
}
