package storage

import (
	"context"
	"sync"
)

// accountCache keeps accounts in memory for the embedded SQLite database,
// whose one server process is the only writer of accounts: every ACME
// request looks its account up, and this saves that query. Each write
// through the store drops the entry first, so a reader never sees a state
// older than the database's. It is not used with Postgres, where another
// replica may change an account at any time.
type accountCache struct {
	*gormStore
	mu   sync.RWMutex
	byID map[string]Account
}

func newAccountCache(s *gormStore) *accountCache {
	return &accountCache{gormStore: s, byID: make(map[string]Account)}
}

// accountCacheMax bounds the memory: past it the cache starts over.
const accountCacheMax = 100000

func (c *accountCache) GetAccount(ctx context.Context, id string) (*Account, error) {
	c.mu.RLock()
	a, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return &a, nil
	}
	got, err := c.gormStore.GetAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.byID) >= accountCacheMax {
		c.byID = make(map[string]Account)
	}
	c.byID[id] = *got
	c.mu.Unlock()
	return got, nil
}

func (c *accountCache) forget(id string) {
	c.mu.Lock()
	delete(c.byID, id)
	c.mu.Unlock()
}

func (c *accountCache) UpdateAccountContact(ctx context.Context, id, contactJSON string) error {
	c.forget(id)
	return c.gormStore.UpdateAccountContact(ctx, id, contactJSON)
}

func (c *accountCache) DeactivateAccount(ctx context.Context, id string) error {
	c.forget(id)
	return c.gormStore.DeactivateAccount(ctx, id)
}

func (c *accountCache) ChangeAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint, newJWK string) error {
	c.forget(id)
	return c.gormStore.ChangeAccountKey(ctx, id, oldThumbprint, newThumbprint, newJWK)
}

var _ Store = (*accountCache)(nil)
