//go:build unix

package pgtest

import "syscall"

// reaperAttr puts the watchdog in its own process group, so the Ctrl-C
// that stops the test binary does not stop the watchdog too.
func reaperAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
