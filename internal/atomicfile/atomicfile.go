// Package atomicfile replaces files so that a reader, or a crash, never
// sees half of one: the CA's server certificate, the agent's output files
// and backups are written through it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path through a temporary file in the same
// directory, fsyncs it and renames it over path, so a reader sees the old
// or the new content, never a mix, and a crash leaves no half file.
func Write(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// File is a file being written in its place's directory under a
// temporary name: Commit makes it path, Abort throws it away. For
// content too large to hold in memory, such as a backup.
type File struct {
	*os.File
	path string
}

// Create starts writing path: a temporary file with mode perm (set
// before any byte is written, so a secret is never readable by others).
func Create(path string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: f, path: path}, nil
}

// Abort closes and removes the temporary file; path is untouched.
func (f *File) Abort() {
	f.File.Close()
	os.Remove(f.File.Name())
}

// Commit fsyncs the content, renames it over path and makes the rename
// durable. On error path is untouched and the temporary file removed.
func (f *File) Commit() error {
	tmp := f.File.Name()
	fail := func(err error) error {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := f.File.Sync(); err != nil {
		return fail(err)
	}
	if err := f.File.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if d, err := os.Open(filepath.Dir(f.path)); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}
