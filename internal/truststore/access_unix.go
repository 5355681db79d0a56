//go:build unix

package truststore

import "golang.org/x/sys/unix"

// access checks write permission as the kernel would, for the real user.
func access(path string) error { return unix.Access(path, unix.W_OK) }
