package main

import (
	"errors"
	"os"
	"syscall"
)

// lockSQLite takes an exclusive lock next to a SQLite database file for
// the life of the process. The embedded database belongs to one server
// process (nonces and accounts are then kept in its memory), so a second
// `certmint serve` on the same file is refused instead of quietly
// disagreeing with the first. The admin commands do not lock: they only
// touch what no server caches.
func lockSQLite(dbPath string) (*os.File, error) {
	f, err := os.OpenFile(dbPath+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, usagef("cannot create the lock file %s.lock: %v", dbPath, errors.Unwrap(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, usagef("another certmint serve is using %s; the embedded SQLite database serves one process (use --db postgres://... for several replicas)", dbPath)
	}
	return f, nil
}
