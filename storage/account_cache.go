package storage

import (
	"context"
	"sync"

	"github.com/certmint/certmint/acme"
)

// accountCache keeps accounts in memory for the embedded SQLite database,
// whose one server process is the only writer of accounts: every ACME
// request looks its account up, and this saves that query. It is not used
// with Postgres, where another replica may change an account at any time.
//
// A write through the store drops the entry before and after it runs and
// bumps gen. A look-up that missed stores what it read only if gen did not
// move meanwhile: otherwise a read racing a deactivation or a key change
// could put the old state back after the write, and keep it.
type accountCache struct {
	*gormStore
	mu   sync.RWMutex
	byID map[string]acme.Account
	gen  uint64 // bumped by every account write; guarded by mu

	// afterRead, when set (tests only), runs between a miss's read and
	// its store: where a racing write lands.
	afterRead func()
}

func newAccountCache(s *gormStore) *accountCache {
	return &accountCache{gormStore: s, byID: make(map[string]acme.Account)}
}

// accountCacheMax bounds the memory: past it the cache starts over.
const accountCacheMax = 100000

func (c *accountCache) GetAccount(ctx context.Context, id string) (*acme.Account, error) {
	c.mu.RLock()
	a, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return &a, nil
	}
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	got, err := c.gormStore.GetAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.afterRead != nil {
		c.afterRead()
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.byID) >= accountCacheMax {
			c.byID = make(map[string]acme.Account)
		}
		c.byID[id] = *got
	}
	c.mu.Unlock()
	return got, nil
}

// write runs an account write with the entry dropped around it.
func (c *accountCache) write(id string, run func() error) error {
	c.forget(id)
	defer c.forget(id)
	return run()
}

func (c *accountCache) forget(id string) {
	c.mu.Lock()
	delete(c.byID, id)
	c.gen++
	c.mu.Unlock()
}

func (c *accountCache) UpdateAccountContact(ctx context.Context, id string, contact []string) error {
	return c.write(id, func() error { return c.gormStore.UpdateAccountContact(ctx, id, contact) })
}

func (c *accountCache) DeactivateAccount(ctx context.Context, id string) error {
	return c.write(id, func() error { return c.gormStore.DeactivateAccount(ctx, id) })
}

func (c *accountCache) ChangeAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint, newJWK string) error {
	return c.write(id, func() error {
		return c.gormStore.ChangeAccountKey(ctx, id, oldThumbprint, newThumbprint, newJWK)
	})
}

var _ Store = (*accountCache)(nil)
