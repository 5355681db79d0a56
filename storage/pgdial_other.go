//go:build !linux

package storage

import "syscall"

// setUserTimeout does nothing outside Linux: keepalive probes alone then
// notice a vanished server, after the system's retransmission limit.
func setUserTimeout(_, _ string, _ syscall.RawConn) error { return nil }
