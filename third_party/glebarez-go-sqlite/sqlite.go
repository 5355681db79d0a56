// Package sqlite stands in for github.com/glebarez/go-sqlite, which
// certmint's go.mod replaces with this directory.
//
// Why: the gorm dialector github.com/glebarez/sqlite imports that fork of
// modernc.org/sqlite (v1.23) for its driver and its Error type. The fork
// re-parses every SQL statement on every call, which was the largest single
// cost of an issuance (see BENCHMARKS.md). modernc.org/sqlite v1.61 keeps
// the parsed statement in a prepared statement instead, but it registers the
// same driver name ("sqlite"), so the two cannot be linked together. This
// stand-in keeps the dialector and hands it the current modernc driver.
package sqlite

import msqlite "modernc.org/sqlite"

// Error is modernc's error type, so that the dialector's and certmint's
// errors.As checks see the real driver's errors.
type Error = msqlite.Error

// Driver is modernc's database/sql driver, registered as "sqlite".
type Driver = msqlite.Driver
