package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

// newTestGroup opens a SQLite file the way the store does, with a table gc
// for the tests' rows, and starts a group committer on it.
func newTestGroup(t *testing.T) (*groupCommitter, *gorm.DB) {
	t.Helper()
	db, err := openSQLite(ctx(t), filepath.Join(t.TempDir(), "gc.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	noErr(t, "open sqlite", err)
	noErr(t, "create table", db.Exec("CREATE TABLE gc (name TEXT PRIMARY KEY)").Error)
	g := newGroupCommitter(db)
	t.Cleanup(func() {
		g.close()
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return g, db
}

func insertGC(name string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error { return tx.Exec("INSERT INTO gc (name) VALUES (?)", name).Error }
}

func gcRows(t *testing.T, db *gorm.DB) map[string]bool {
	t.Helper()
	var names []string
	noErr(t, "read rows", db.Raw("SELECT name FROM gc").Scan(&names).Error)
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// blockCommitter occupies the committer with a transaction that waits
// until the returned release is called, so that the callers queued
// meanwhile are committed as one group.
func blockCommitter(t *testing.T, g *groupCommitter) (release func(), done <-chan error) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- g.run(context.Background(), func(tx *gorm.DB) error {
			close(started)
			<-unblock
			return tx.Exec("INSERT INTO gc (name) VALUES ('blocker')").Error
		})
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("blocking transaction did not start")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release)
	return release, errc
}

// queued is one caller waiting in the committer's queue.
type queued struct {
	name string
	err  chan error
}

// enqueue starts a caller of run and waits until it is in the queue, so
// that callers queue in a known order.
func enqueue(t *testing.T, g *groupCommitter, c context.Context, name string, fn func(tx *gorm.DB) error) queued {
	t.Helper()
	before := len(g.queue)
	q := queued{name: name, err: make(chan error, 1)}
	go func() { q.err <- g.run(c, fn) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(g.queue) == before {
		if time.Now().After(deadline) {
			t.Fatalf("caller %s did not queue", name)
		}
		time.Sleep(time.Millisecond)
	}
	return q
}

func result(t *testing.T, q queued) error {
	t.Helper()
	select {
	case err := <-q.err:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("caller %s not answered", q.name)
		return nil
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	g, db := newTestGroup(t)
	const n = 64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- g.run(ctx(t), insertGC(fmt.Sprint("row-", i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "run", err)
	}
	rows := gcRows(t, db)
	for i := range n {
		if !rows[fmt.Sprint("row-", i)] {
			t.Fatalf("row-%d missing after its run succeeded", i)
		}
	}
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
}

// Within one group a failing transaction is rolled back to its savepoint
// alone: its caller gets its error, its write is gone, and the others'
// writes (before and after it in the group) commit.
func TestGroupCommitFailureRolledBackAlone(t *testing.T) {
	g, db := newTestGroup(t)
	release, blocked := blockCommitter(t, g)

	boom := errors.New("boom")
	var mu sync.Mutex
	pools := map[string]bool{} // the *sql.Tx each function ran on
	record := func(tx *gorm.DB) {
		mu.Lock()
		pools[fmt.Sprintf("%p", tx.Statement.ConnPool)] = true
		mu.Unlock()
	}
	var qs []queued
	for i := range 5 {
		name := fmt.Sprint("ok-", i)
		fn := func(tx *gorm.DB) error { record(tx); return insertGC(name)(tx) }
		if i == 2 {
			name = "bad"
			fn = func(tx *gorm.DB) error {
				record(tx)
				if err := insertGC(name)(tx); err != nil {
					return err
				}
				return boom
			}
		}
		qs = append(qs, enqueue(t, g, ctx(t), name, fn))
	}
	release()
	noErr(t, "blocking transaction", <-blocked)
	for _, q := range qs {
		err := result(t, q)
		if q.name == "bad" {
			wantErr(t, "failing transaction", err, boom)
		} else {
			noErr(t, q.name, err)
		}
	}
	if len(pools) != 1 {
		t.Fatalf("the queued transactions ran on %d transactions, want one group", len(pools))
	}
	rows := gcRows(t, db)
	if rows["bad"] {
		t.Fatal("the failed transaction's row was committed")
	}
	for _, q := range qs {
		if q.name != "bad" && !rows[q.name] {
			t.Fatalf("row %s of a successful transaction missing", q.name)
		}
	}
}

// A panic is one caller's error, not the end of the committer: in a group
// and alone.
func TestGroupCommitPanic(t *testing.T) {
	g, db := newTestGroup(t)
	release, blocked := blockCommitter(t, g)
	panicky := func(name string) func(tx *gorm.DB) error {
		return func(tx *gorm.DB) error {
			if err := insertGC(name)(tx); err != nil {
				return err
			}
			panic("kaboom " + name)
		}
	}
	a := enqueue(t, g, ctx(t), "a", insertGC("a"))
	p := enqueue(t, g, ctx(t), "panic-grouped", panicky("panic-grouped"))
	b := enqueue(t, g, ctx(t), "b", insertGC("b"))
	release()
	noErr(t, "blocking transaction", <-blocked)
	noErr(t, "a", result(t, a))
	noErr(t, "b", result(t, b))
	if err := result(t, p); err == nil || !strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "kaboom panic-grouped") {
		t.Fatalf("panicking transaction in a group: err = %v, want one naming the panic", err)
	}

	err := g.run(ctx(t), panicky("panic-alone"))
	if err == nil || !strings.Contains(err.Error(), "kaboom panic-alone") {
		t.Fatalf("panicking transaction alone: err = %v, want one naming the panic", err)
	}
	noErr(t, "run after panics", g.run(ctx(t), insertGC("after")))

	rows := gcRows(t, db)
	for _, n := range []string{"a", "b", "after"} {
		if !rows[n] {
			t.Fatalf("row %s missing", n)
		}
	}
	for _, n := range []string{"panic-grouped", "panic-alone"} {
		if rows[n] {
			t.Fatalf("row %s of a panicking transaction committed", n)
		}
	}
}

// A caller that gave up before its transaction started gets its ctx's
// error and its function never runs, whether the ctx ended before run or
// while it waited in the queue.
func TestGroupCommitCancelledBeforeTurn(t *testing.T) {
	g, db := newTestGroup(t)
	var ran sync.Map
	fn := func(name string) func(tx *gorm.DB) error {
		return func(tx *gorm.DB) error { ran.Store(name, true); return insertGC(name)(tx) }
	}

	dead, cancel := context.WithCancel(context.Background())
	cancel()
	wantErr(t, "run with cancelled ctx", g.run(dead, fn("early")), context.Canceled)

	release, blocked := blockCommitter(t, g)
	waiting, cancelWaiting := context.WithCancel(context.Background())
	defer cancelWaiting()
	before := enqueue(t, g, ctx(t), "before", fn("before"))
	gone := enqueue(t, g, waiting, "gone", fn("gone"))
	after := enqueue(t, g, ctx(t), "after", fn("after"))
	cancelWaiting()
	release()
	noErr(t, "blocking transaction", <-blocked)
	noErr(t, "before", result(t, before))
	noErr(t, "after", result(t, after))
	wantErr(t, "caller cancelled in the queue", result(t, gone), context.Canceled)

	for _, n := range []string{"early", "gone"} {
		if _, ok := ran.Load(n); ok {
			t.Fatalf("function of cancelled caller %s ran", n)
		}
	}
	rows := gcRows(t, db)
	if rows["early"] || rows["gone"] || !rows["before"] || !rows["after"] {
		t.Fatalf("rows = %v, want before and after only (plus blocker)", rows)
	}
}

// close answers every queued caller: either its transaction committed
// before the committer stopped, or it gets ErrUnavailable and its function
// never ran. Nobody is left waiting.
func TestGroupCommitCloseAnswersQueued(t *testing.T) {
	g, db := newTestGroup(t)
	release, blocked := blockCommitter(t, g)
	var ran sync.Map
	var qs []queued
	for i := range 3 {
		name := fmt.Sprint("q-", i)
		qs = append(qs, enqueue(t, g, ctx(t), name, func(tx *gorm.DB) error {
			ran.Store(name, true)
			return insertGC(name)(tx)
		}))
	}
	closed := make(chan struct{})
	go func() { g.close(); close(closed) }()
	// close must wait for the transaction in progress, not abandon it.
	select {
	case <-closed:
		t.Fatal("close returned while a transaction was running")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	noErr(t, "blocking transaction", <-blocked)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
	rows := gcRows(t, db)
	for _, q := range qs {
		err := result(t, q)
		_, didRun := ran.Load(q.name)
		switch {
		case err == nil && !rows[q.name]:
			t.Fatalf("%s: success but no row", q.name)
		case err != nil && !errors.Is(err, ErrUnavailable):
			t.Fatalf("%s: err = %v, want nil or ErrUnavailable", q.name, err)
		case err != nil && (didRun || rows[q.name]):
			t.Fatalf("%s: ErrUnavailable but its function ran", q.name)
		}
	}
}

// After close, run answers at once with ErrUnavailable; it must never
// queue a transaction that nobody will run.
func TestGroupCommitRunAfterClose(t *testing.T) {
	g, _ := newTestGroup(t)
	g.close()
	for i := range 20 {
		errc := make(chan error, 1)
		go func() {
			errc <- g.run(context.Background(), func(*gorm.DB) error {
				return errors.New("ran after close")
			})
		}()
		select {
		case err := <-errc:
			wantErr(t, "run after close", err, ErrUnavailable)
		case <-time.After(2 * time.Second):
			t.Fatalf("run %d after close hung (queued with no committer left)", i)
		}
	}
}
