package storage

import (
	"context"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// maxGroup bounds how many transactions share one SQLite commit, so that
// one commit's latency stays bounded under any load.
const maxGroup = 32

// groupCommitter runs the SQLite store's write transactions on one
// goroutine and lets the transactions queued behind each other share a
// single COMMIT.
//
// Why: with one connection SQLite runs transactions one at a time anyway,
// and a commit is the dearest part of a small transaction: it appends
// every page the transaction touched to the WAL (4 KiB each) and takes and
// releases the file locks. Transactions from concurrent requests touch the
// same few pages (the ends of the same tables and indexes), so writing
// them once per group instead of once per transaction cut the server's
// CPU per issuance markedly (see BENCHMARKS.md).
//
// Each transaction of a group runs inside its own SAVEPOINT: one that
// fails is rolled back alone and its caller gets its error, the others
// commit. A caller is answered only after the COMMIT that holds its
// changes returned, so success still means durable (as durable as
// synchronous=NORMAL makes any commit). A group of one is a plain
// transaction with no savepoint.
type groupCommitter struct {
	db    *gorm.DB
	queue chan *groupTx
	wg    sync.WaitGroup
	// mu orders queueing against close: once closed is set no transaction
	// enters the queue, so the loop's final drain answers every one.
	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
}

type groupTx struct {
	ctx  context.Context
	fn   func(tx *gorm.DB) error
	err  error
	done chan struct{}
}

func newGroupCommitter(db *gorm.DB) *groupCommitter {
	g := &groupCommitter{db: db, queue: make(chan *groupTx, 4*maxGroup), stop: make(chan struct{})}
	g.wg.Add(1)
	go g.loop()
	return g
}

// run queues fn and waits for the commit that holds it. A transaction
// whose ctx ended before its group started is skipped; once its group has
// started it runs to the end, and its caller waits for the outcome so that
// an error never hides a commit.
func (g *groupCommitter) run(ctx context.Context, fn func(tx *gorm.DB) error) error {
	t := &groupTx{ctx: ctx, fn: fn, done: make(chan struct{})}
	if err := g.enqueue(t); err != nil {
		return err
	}
	<-t.done
	return t.err
}

// enqueue holds the read lock while it waits for room in the queue; the
// loop keeps emptying the queue until close has taken the write lock, so
// the wait ends.
func (g *groupCommitter) enqueue(t *groupTx) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return fmt.Errorf("database closed: %w", ErrUnavailable)
	}
	select {
	case g.queue <- t:
		return nil
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
}

// close answers every queued transaction, waits for the one under way and
// stops the loop. Later calls to run fail with ErrUnavailable.
func (g *groupCommitter) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	g.wg.Wait()
}

func (g *groupCommitter) loop() {
	defer g.wg.Done()
	batch := make([]*groupTx, 0, maxGroup)
	for {
		select {
		case <-g.stop:
			g.drain()
			return
		case t := <-g.queue:
			batch = append(batch[:0], t)
		}
	collect:
		for len(batch) < maxGroup {
			select {
			case t := <-g.queue:
				batch = append(batch, t)
			default:
				break collect
			}
		}
		g.commit(batch)
	}
}

// drain answers whatever was queued when the store closed.
func (g *groupCommitter) drain() {
	for {
		select {
		case t := <-g.queue:
			t.err = fmt.Errorf("database closed: %w", ErrUnavailable)
			close(t.done)
		default:
			return
		}
	}
}

func (g *groupCommitter) commit(batch []*groupTx) {
	live := batch[:0]
	for _, t := range batch {
		if err := t.ctx.Err(); err != nil {
			t.err = err
			close(t.done)
			continue
		}
		live = append(live, t)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		t := live[0]
		t.err = runGuarded(func() error { return g.db.WithContext(t.ctx).Transaction(t.fn) })
		close(t.done)
		return
	}
	err := g.db.WithContext(context.Background()).Transaction(func(tx *gorm.DB) error {
		for _, t := range live {
			if err := tx.Exec("SAVEPOINT grp").Error; err != nil {
				return err
			}
			// Without cancel: SQLite may roll back the whole transaction
			// when a statement is interrupted, which would fail the group
			// for one caller that went away.
			t.err = runGuarded(func() error { return t.fn(tx.WithContext(context.WithoutCancel(t.ctx))) })
			stmt := "RELEASE SAVEPOINT grp"
			if t.err != nil {
				stmt = "ROLLBACK TO SAVEPOINT grp; RELEASE SAVEPOINT grp"
			}
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	})
	for _, t := range live {
		if err != nil && t.err == nil {
			t.err = err
		}
		close(t.done)
	}
}

// runGuarded turns a panic in a transaction function into its error, so
// that one bad request cannot stop every other request's commits.
func runGuarded(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transaction panicked: %v", r)
		}
	}()
	return fn()
}
