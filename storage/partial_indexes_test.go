package storage

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
)

// capturedSQL records the statements gorm runs, so a test can ask SQLite
// how it plans exactly what the store sent.
type capturedSQL struct {
	mu   sync.Mutex
	last []string
	vars [][]any
}

func (c *capturedSQL) record(db *gorm.DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = append(c.last, db.Statement.SQL.String())
	c.vars = append(c.vars, slices.Clone(db.Statement.Vars))
}

func (c *capturedSQL) take(t *testing.T, contains string) (string, []any) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.last) - 1; i >= 0; i-- {
		if strings.Contains(c.last[i], contains) {
			q, v := c.last[i], c.vars[i]
			c.last, c.vars = nil, nil
			return q, v
		}
	}
	t.Fatalf("no statement containing %q was run; ran %q", contains, c.last)
	return "", nil
}

func (c *capturedSQL) register(t *testing.T, db *gorm.DB) {
	t.Helper()
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("test:capture", c.record),
		cb.Update().After("gorm:update").Register("test:capture", c.record),
		cb.Row().After("gorm:row").Register("test:capture", c.record),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// plan returns SQLite's EXPLAIN QUERY PLAN of q as one string.
func plan(t *testing.T, gs *gormStore, q string, vars ...any) string {
	t.Helper()
	rows, err := gs.db.Raw("EXPLAIN QUERY PLAN "+q, vars...).Rows()
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "; ")
	}
	return b.String()
}

// TestPartialIndexPlans: each query that migration 0010's partial indexes
// exist for is planned on its index. A query that stops repeating the
// index's condition verbatim silently falls back to a scan of the whole
// table, which only shows once the table holds a million rows.
func TestPartialIndexPlans(t *testing.T) {
	gs := openFileStore(t)
	var c capturedSQL
	c.register(t, gs.db)
	c.register(t, gs.rd)
	now := time.Now()
	cases := []struct {
		name, index, contains string
		run                   func() error
	}{
		{"order expiry sweep", "idx_orders_unfinished", "UPDATE `orders`", func() error {
			_, err := gs.ExpireStale(ctx(t), now)
			return err
		}},
		{"authorization expiry sweep", "idx_authz_pending", "UPDATE `authorizations`", func() error {
			_, err := gs.ExpireStale(ctx(t), now)
			return err
		}},
		{"console filter on invalid orders", "idx_orders_unfinished", "FROM `orders`", func() error {
			_, err := gs.ListOrders(ctx(t), OrderFilter{Status: acme.StatusInvalid}, Page{})
			return err
		}},
		{"pending authorizations per account", "idx_authz_pending", "FROM `authorizations`", func() error {
			_, err := gs.CountPendingAuthorizations(ctx(t), "acct")
			return err
		}},
		{"challenges left processing", "idx_challenges_processing", "FROM `challenges`", func() error {
			_, err := gs.ListProcessingChallenges(ctx(t), 10)
			return err
		}},
		{"authorization reuse", "idx_authz_reusable", "FROM `authorizations`", func() error {
			_, err := gs.FindReusableAuthorization(ctx(t), "acct", "dns", "a.example", false, now)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err != nil {
				t.Fatal(err)
			}
			q, vars := c.take(t, tc.contains)
			if p := plan(t, gs, q, vars...); !strings.Contains(p, tc.index) {
				t.Errorf("%s\nis planned as %s\nwant it to use %s", q, p, tc.index)
			}
		})
	}
}
