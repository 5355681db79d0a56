package storage

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// checkpointInterval is how often the background connection copies the
// WAL into the database file. At full load about 10–20 MB of WAL builds up
// per interval; each checkpoint costs two fsyncs.
const checkpointInterval = time.Second

// walCheckpointer runs SQLite's WAL checkpoints on a connection of its own.
//
// Why: SQLite normally checkpoints inside the commit that pushes the WAL
// past 1000 pages, on the committing connection, and a checkpoint ends
// with fsyncs of the WAL and of the database file. certmint's store has
// one connection, so every request waited behind those fsyncs: on this
// machine's disk that took a quarter of the throughput (compare a data
// directory on tmpfs, BENCHMARKS.md). The store's connection is opened
// with wal_autocheckpoint(0), and this second connection checkpoints in
// PASSIVE mode, which never blocks the store's readers or writer. Commits
// are as durable as before: synchronous=NORMAL never fsynced them.
type walCheckpointer struct {
	db   *sql.DB
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startCheckpointer(dsn string, log *slog.Logger) (*walCheckpointer, error) {
	db, err := sql.Open(sqliteDriverName, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &walCheckpointer{db: db, log: log, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

func (c *walCheckpointer) loop() {
	defer c.wg.Done()
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
		// Report a failing checkpoint once, not every second: the WAL
		// then grows until it works again, but nothing is lost.
		if err != nil && !failing {
			c.log.Warn("sqlite WAL checkpoint failed; retrying every second", "err", err)
		}
		failing = err != nil
	}
}

// close stops the loop and closes its connection. The store's own
// connection, closed last, then checkpoints what is left.
func (c *walCheckpointer) close() {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
	_ = c.db.Close()
}
